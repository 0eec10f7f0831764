/* ticker: the push opt-in prompt, served at /push.js. No framework, no build step.
 *
 * A soft prompt ("Get push notifications from <site>", topics, Accept / Refuse) comes first;
 * the browser's own permission dialog is only raised once the reader has said yes, because a
 * refused browser dialog cannot be asked again. Refuse is remembered for `snoozeDays`.
 * Already subscribed readers see only a small "manage" control that can turn push off.
 *
 * The server fills SERVER_CONFIG in when it serves this file (site name, topics, snooze days,
 * URLs). Everything renders in an open Shadow DOM; theme it with the --ticker-push-* custom
 * properties (set them on :root or on #ticker-push). The host element's data-state says
 * where the prompt is: prompt, working, error, blocked, done, manage, off, hidden, snoozed,
 * denied, unsupported. `window.TickerPush.open()` shows the prompt (or the manage panel)
 * again, e.g. from a "Notifications" link in a page footer.
 */
(() => {
  "use strict";

  if (window.TickerPush) return;  // the script was included twice
  const SERVER_CONFIG = {} /* @ticker-config */;
  const config = Object.assign({
    siteName: "Newsroom",
    topics: [],
    snoozeDays: 30,
    vapidKeyUrl: "/api/push/vapid-public-key",
    subscriptionsUrl: "/api/push/subscriptions",
    serviceWorkerUrl: "/sw.js",
    scope: "/",
    // A browser without a reachable push service may leave subscribe() pending for minutes.
    subscribeTimeoutMs: 20000,
  }, SERVER_CONFIG);

  const script = document.currentScript;
  const base = new URL(script && script.src ? script.src : location.href, location.href);
  const api = (path) => new URL(path, base).href;
  const REFUSED_KEY = "ticker-push:refused-at";
  const TOPICS_KEY = "ticker-push:topics";
  // The service worker has no localStorage; it reads the chosen topics from this cache entry
  // when the browser rotates the subscription (pushsubscriptionchange).
  const PREFS_CACHE = "ticker-push";
  const PREFS_URL = api("/__ticker-push/prefs");
  const DAY_MS = 24 * 60 * 60 * 1000;

  const store = {
    get(key) { try { return localStorage.getItem(key); } catch { return null; } },
    set(key, value) { try { localStorage.setItem(key, value); } catch { /* private mode */ } },
    remove(key) { try { localStorage.removeItem(key); } catch { /* private mode */ } },
  };

  function supported() {
    return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window
      && window.isSecureContext !== false
      // A service worker can only be registered from its own origin.
      && base.origin === location.origin;
  }

  function snoozed() {
    const at = Number(store.get(REFUSED_KEY));
    const days = Number(config.snoozeDays);
    return at > 0 && days > 0 && Date.now() - at < days * DAY_MS;
  }

  function savedTopics() {
    try {
      const topics = JSON.parse(store.get(TOPICS_KEY) || "null");
      return Array.isArray(topics) ? topics : null;
    } catch { return null; }
  }

  async function savePrefs(prefs) {
    store.set(TOPICS_KEY, JSON.stringify(prefs.topics));
    try {
      const cache = await caches.open(PREFS_CACHE);
      await cache.put(PREFS_URL, new Response(JSON.stringify(prefs),
        { headers: { "Content-Type": "application/json" } }));
    } catch { /* the server keeps the topics of the row it replaces */ }
  }

  async function forgetPrefs() {
    store.remove(TOPICS_KEY);
    try { await caches.delete(PREFS_CACHE); } catch { /* nothing to forget */ }
  }

  function base64UrlToBytes(text) {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const raw = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }

  function sameKey(buffer, bytes) {
    if (!buffer) return false;
    const a = new Uint8Array(buffer);
    return a.length === bytes.length && a.every((v, i) => v === bytes[i]);
  }

  function timeout(promise, ms, message) {
    let timer;
    const expired = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new PromptError(message)), ms);
    });
    return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
  }

  /** An error whose message is meant for the reader. */
  class PromptError extends Error {
    constructor(message, detail) { super(message); this.detail = detail || ""; }
  }

  async function serverError(res) {
    let message = res.statusText;
    try {
      const body = await res.json();
      if (body && body.error && body.error.message) message = body.error.message;
    } catch { /* not JSON */ }
    return `HTTP ${res.status}: ${message}`;
  }

  async function fetchJson(url, init, fallback) {
    let res;
    try {
      res = await fetch(url, init);
    } catch (err) {
      throw new PromptError(`${fallback} The site could not be reached.`, String(err));
    }
    if (!res.ok) throw new PromptError(fallback, await serverError(res));
    return res.status === 204 ? null : res.json().catch(() => null);
  }

  function explain(err) {
    if (err instanceof PromptError) return err;
    const detail = err && err.name ? `${err.name}: ${err.message}` : String(err);
    if (err && err.name === "NotAllowedError") {
      return new PromptError("Notifications are blocked for this site in your browser.", detail);
    }
    if (err && err.name === "AbortError" && /permission/i.test(err.message)) {
      // Chromium's answer in private windows, where it offers no push service at all.
      return new PromptError("This browser does not offer push notifications here "
        + "(private windows cannot receive them).", detail);
    }
    if (err && (err.name === "AbortError" || err.name === "NotSupportedError")) {
      return new PromptError("Your browser could not reach its push service. "
        + "Check your connection and try again later.", detail);
    }
    return new PromptError("Notifications could not be turned on.", detail);
  }

  // --- talking to the browser and the server ------------------------------------------------

  function register() {
    return navigator.serviceWorker.register(api(config.serviceWorkerUrl),
      { scope: config.scope });
  }

  async function activeRegistration(registration) {
    if (registration.active) return registration;
    const worker = registration.installing || registration.waiting;
    await timeout(new Promise((resolve) => {
      worker.addEventListener("statechange", () => {
        if (worker.state === "activated") resolve();
      });
    }), 10000, "The notification service worker did not start.");
    return registration;
  }

  async function currentSubscription() {
    if (Notification.permission !== "granted") return null;
    // Registering again is cheap and keeps the worker up to date on every visit.
    const registration = await register();
    return registration.pushManager.getSubscription();
  }

  async function subscribe(topics) {
    // Ask first, while the click still counts as a user gesture (Safari insists on one).
    const permissionAsked = Notification.requestPermission();
    const registered = register();
    registered.catch(() => { /* reported below, once the permission is known */ });
    const permission = await permissionAsked;
    if (permission !== "granted") return permission;
    const registration = await activeRegistration(await registered);
    const { publicKey } = await fetchJson(api(config.vapidKeyUrl), {},
      "The site's push service is not available right now.");
    const key = base64UrlToBytes(publicKey);
    let sub = await registration.pushManager.getSubscription();
    if (sub && !sameKey(sub.options.applicationServerKey, key)) {
      await sub.unsubscribe();
      sub = null;
    }
    if (!sub) {
      sub = await timeout(
        registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }),
        Number(config.subscribeTimeoutMs),
        "Your browser's push service did not answer. Check your connection and try again later.");
    }
    const prefs = {
      topics,
      language: navigator.language,
      timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC",
    };
    try {
      await fetchJson(api(config.subscriptionsUrl), {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ subscription: sub.toJSON(), ...prefs, vapidKey: publicKey }),
      }, "The site could not save your subscription.");
    } catch (err) {
      // A browser subscription the server does not know about would never get a message.
      await sub.unsubscribe().catch(() => {});
      throw err;
    }
    await savePrefs(prefs);
    store.remove(REFUSED_KEY);
    return "subscribed";
  }

  async function unsubscribe() {
    const registration = await navigator.serviceWorker.getRegistration(api(config.scope));
    const sub = registration && await registration.pushManager.getSubscription();
    if (sub) {
      const keys = sub.toJSON().keys || {};
      try {
        await fetchJson(api(config.subscriptionsUrl), {
          method: "DELETE",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ endpoint: sub.endpoint, auth: keys.auth }),
        }, "The site could not remove your subscription.");
      } catch { /* the push service answers 410 to the next send and the server drops the row */ }
      await sub.unsubscribe();
    }
    await forgetPrefs();
    store.set(REFUSED_KEY, String(Date.now()));
  }

  // --- the prompt -----------------------------------------------------------------------------

  const CSS = `
    :host {
      all: initial;
      position: fixed; z-index: var(--ticker-push-z, 2147483000);
      inset: auto var(--ticker-push-offset, 16px) var(--ticker-push-offset, 16px) auto;
      font: var(--ticker-push-font, 15px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif);
      color: var(--ticker-push-fg, #1b1f24);
    }
    :host([data-state="hidden"]), :host([data-state="snoozed"]),
    :host([data-state="denied"]), :host([data-state="unsupported"]) { display: none; }
    * { box-sizing: border-box; }
    .dialog {
      width: min(24rem, calc(100vw - 2 * var(--ticker-push-offset, 16px)));
      padding: 1rem 1.125rem;
      background: var(--ticker-push-bg, #ffffff);
      border: 1px solid var(--ticker-push-border, #d0d7de);
      border-radius: var(--ticker-push-radius, 12px);
      box-shadow: var(--ticker-push-shadow, 0 8px 28px rgba(0, 0, 0, .18));
    }
    .dialog:focus { outline: none; }
    .dialog:focus-visible { outline: 2px solid var(--ticker-push-accent, #0b57d0); }
    .title { margin: 0 0 .375rem; font-size: 1.0625em; font-weight: 650; }
    .description { margin: 0 0 .75rem; color: var(--ticker-push-muted, #57606a); }
    .topics { display: flex; flex-wrap: wrap; gap: .375rem; margin: 0 0 .75rem; padding: 0;
      border: 0; }
    .topics legend { padding: 0; margin-bottom: .375rem; font-size: .875em; font-weight: 600; }
    .topic { display: inline-flex; align-items: center; gap: .3rem; padding: .25rem .6rem;
      border: 1px solid var(--ticker-push-border, #d0d7de); border-radius: 999px;
      font-size: .875em; cursor: pointer; user-select: none; }
    .topic:has(input:checked) { border-color: var(--ticker-push-accent, #0b57d0);
      background: color-mix(in srgb, var(--ticker-push-accent, #0b57d0) 10%, transparent); }
    .topic input { margin: 0; accent-color: var(--ticker-push-accent, #0b57d0); }
    .status { margin: 0 0 .75rem; font-size: .9em; }
    .status:empty { display: none; }
    .status.error { color: var(--ticker-push-error, #b3261e); }
    .detail { display: block; margin-top: .25rem; font-size: .8em;
      color: var(--ticker-push-muted, #57606a); overflow-wrap: anywhere; }
    .actions { display: flex; justify-content: flex-end; gap: .5rem; }
    button { font: inherit; font-size: .9375em; padding: .45rem .9rem; cursor: pointer;
      border-radius: var(--ticker-push-button-radius, 8px); border: 1px solid transparent; }
    button:focus-visible { outline: 2px solid var(--ticker-push-accent, #0b57d0);
      outline-offset: 2px; }
    button:disabled { opacity: .6; cursor: progress; }
    .primary { background: var(--ticker-push-accent, #0b57d0);
      color: var(--ticker-push-accent-fg, #ffffff); font-weight: 600; }
    .secondary { background: transparent; color: inherit;
      border-color: var(--ticker-push-border, #d0d7de); }
    .manage { display: inline-flex; align-items: center; gap: .4rem; font-size: .875em;
      background: var(--ticker-push-bg, #ffffff); color: inherit;
      border: 1px solid var(--ticker-push-border, #d0d7de); border-radius: 999px;
      box-shadow: var(--ticker-push-shadow, 0 8px 28px rgba(0, 0, 0, .18)); }
    @media (prefers-color-scheme: dark) {
      :host { color: var(--ticker-push-fg, #e6edf3); }
      .dialog, .manage { background: var(--ticker-push-bg, #161b22);
        border-color: var(--ticker-push-border, #30363d); }
      .description, .detail { color: var(--ticker-push-muted, #9198a1); }
      .primary { background: var(--ticker-push-accent, #4493f8); }
    }
  `;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === false || value == null) continue;
      if (name === "onclick") node.addEventListener("click", value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    node.append(...children.filter((c) => c != null));
    return node;
  }

  function topicLabel(topic) {
    return topic.charAt(0).toUpperCase() + topic.slice(1).replace(/[-_]/g, " ");
  }

  const offered = (config.topics || []).map(String);
  const site = String(config.siteName);
  let host = null;
  let root = null;
  let chosen = savedTopics() || offered.slice();

  function mount() {
    if (host) return;
    host = el("div", { id: "ticker-push" });
    root = host.attachShadow({ mode: "open" });
    document.body.append(host);
  }

  function button(kind, label, onclick, primary, extra) {
    return el("button", { type: "button", class: `${kind} ${primary ? "primary" : "secondary"}`,
      part: kind, onclick, ...extra }, label);
  }

  function dialog(title, description, body, status, actions, onEscape) {
    const box = el("div", { class: "dialog", part: "dialog", role: "dialog",
      "aria-modal": "false", "aria-labelledby": "ticker-push-title",
      "aria-describedby": description ? "ticker-push-description" : null, tabindex: "-1" },
    el("h2", { class: "title", part: "title", id: "ticker-push-title" }, title),
    description ? el("p", { class: "description", part: "description",
      id: "ticker-push-description" }, description) : null,
    body,
    status,
    el("div", { class: "actions", part: "actions" }, ...actions));
    box.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && onEscape) {
        event.preventDefault();
        onEscape();
      }
    });
    return box;
  }

  function statusLine(text, kind, detail) {
    return el("p", { class: `status${kind ? " " + kind : ""}`, part: "status",
      role: kind === "error" ? "alert" : "status", "aria-live": "polite" },
    text || "", detail ? el("span", { class: "detail", part: "detail" }, detail) : null);
  }

  /** Show one view. `focus`: move focus into it (after a click made the old buttons vanish). */
  function show(state, view, focus) {
    mount();
    host.setAttribute("data-state", state);
    root.replaceChildren(el("style", {}, CSS), ...(view ? [view] : []));
    if (focus && view) {
      const target = view.matches("button") ? view
        : view.querySelector("button.primary:not(:disabled)")
          || view.querySelector("button:not(:disabled)") || view;
      target.focus();
    }
  }

  function hide(state) {
    show(state, null, false);
  }

  function topicPicker(disabled) {
    if (!offered.length) return null;
    const update = (event) => {
      const value = event.target.value;
      chosen = event.target.checked ? [...new Set([...chosen, value])]
        : chosen.filter((t) => t !== value);
      const accept = root.querySelector("button.accept");
      if (accept) accept.disabled = chosen.length === 0;
    };
    return el("fieldset", { class: "topics", part: "topics", disabled },
      el("legend", {}, "Topics"),
      ...offered.map((topic) => {
        const box = el("input", { type: "checkbox", name: "topic", value: topic,
          checked: chosen.includes(topic) });
        box.addEventListener("change", update);
        return el("label", { class: "topic", part: "topic" }, box, topicLabel(topic));
      }));
  }

  function promptView({ working = false, status = null } = {}, focus = false) {
    const refuseNow = () => refuse();
    show(working ? "working" : "prompt", dialog(
      `Get push notifications from ${site}`,
      "Breaking news and the stories you choose, even when this page is closed. "
        + "You can turn them off at any time.",
      topicPicker(working),
      status || (working ? statusLine("Turning notifications on…") : statusLine("")),
      [
        button("refuse", "No thanks", refuseNow, false, { disabled: working }),
        button("accept", "Allow notifications", () => accept(), true,
          { disabled: working || (offered.length > 0 && chosen.length === 0) }),
      ],
      working ? null : refuseNow), focus);
    if (working) root.querySelector(".dialog").setAttribute("aria-busy", "true");
  }

  function messageView(state, title, status, actions, focus) {
    show(state, dialog(title, null, null, status, actions, () => closeToRest()), focus);
  }

  function refuse() {
    store.set(REFUSED_KEY, String(Date.now()));
    hide("hidden");
  }

  /** Back to the resting state: the manage control when subscribed, otherwise nothing. */
  async function closeToRest() {
    let sub = null;
    try { sub = await currentSubscription(); } catch { /* treat as not subscribed */ }
    if (sub) manageControl(true);
    else hide("hidden");
  }

  async function accept() {
    const topics = offered.length ? chosen.filter((t) => offered.includes(t)) : [];
    promptView({ working: true }, true);
    let outcome;
    try {
      outcome = await subscribe(topics);
    } catch (err) {
      const error = explain(err);
      messageView("error", "Notifications are not on", statusLine(error.message, "error",
        error.detail), [
        button("close", "Close", () => closeToRest()),
        button("retry", "Try again", () => accept(), true),
      ], true);
      return;
    }
    if (outcome === "subscribed") {
      messageView("done", "Notifications are on", statusLine(
        `You will get notifications from ${site}.`), [
        button("close", "Close", () => manageControl(true), true),
      ], true);
    } else if (outcome === "denied") {
      messageView("blocked", "Notifications are blocked", statusLine(
        "Your browser blocks notifications for this site. You can allow them in the site "
        + "settings of your browser.", "error"), [
        button("close", "Close", () => hide("hidden"), true),
      ], true);
    } else {
      // The browser's dialog was dismissed without an answer: offer the prompt again.
      promptView({ status: statusLine("Notifications were not allowed. You can try again.") },
        true);
    }
  }

  function manageControl(focus) {
    const open = () => managePanel();
    show("manage", el("button", { type: "button", class: "manage", part: "manage",
      "aria-haspopup": "dialog", "aria-expanded": "false",
      "aria-label": `Manage notifications from ${site}` }, "🔔 Notifications on"), focus);
    root.querySelector("button.manage").addEventListener("click", open);
  }

  function managePanel(status, busy) {
    const topics = savedTopics();
    const about = topics && topics.length
      ? `You get notifications about: ${topics.map(topicLabel).join(", ")}.`
      : "You get notifications from this site.";
    show(busy ? "working" : "manage", dialog(`Notifications from ${site}`, about, null,
      status || statusLine(busy ? "Turning notifications off…" : ""), [
        button("close", "Close", () => manageControl(true), false, { disabled: busy }),
        button("unsubscribe", "Turn off notifications", () => turnOff(), true,
          { disabled: busy }),
      ], busy ? null : () => manageControl(true)), true);
  }

  async function turnOff() {
    managePanel(null, true);
    try {
      await unsubscribe();
    } catch (err) {
      managePanel(statusLine("Notifications could not be turned off.", "error",
        explain(err).detail));
      return;
    }
    messageView("off", "Notifications are off", statusLine(
      `You will no longer get notifications from ${site}.`), [
      button("close", "Close", () => hide("hidden"), true),
    ], true);
  }

  async function start(force) {
    if (!supported()) return hide("unsupported");
    if (Notification.permission === "denied") return hide("denied");
    let sub = null;
    try {
      sub = await currentSubscription();
    } catch { /* no worker yet: not subscribed */ }
    if (sub) return force ? managePanel() : manageControl(false);
    if (snoozed() && !force) return hide("snoozed");
    promptView({}, Boolean(force));
  }

  window.TickerPush = { open: () => start(true), config: Object.freeze({ ...config }) };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => start(false), { once: true });
  } else {
    start(false);
  }
})();
