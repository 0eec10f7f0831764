// The newsroom console. Plain script, no build step. Everything the server says is put in
// the page with textContent, never as HTML. Unsafe requests carry the session's CSRF token.
"use strict";

const state = { csrf: "", user: null, config: null, ws: null, idem: null, auditBefore: null,
                alerts: new Map(), confirmed: false };
const $ = (sel) => document.querySelector(sel);

class HttpError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(method, path, body, headers) {
  const init = { method, credentials: "same-origin", headers: { ...(headers || {}) } };
  if (method !== "GET") init.headers["X-CSRF-Token"] = state.csrf;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  if (resp.status === 204) return null;
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const err = data.error || {};
    if (resp.status === 401 && path !== "/api/session") showLogin();
    throw new HttpError(resp.status, err.code || "", err.message || resp.statusText);
  }
  return data;
}

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function say(target, text, kind) {
  const node = typeof target === "string" ? $(target) : target;
  node.textContent = text;
  node.className = "status" + (kind ? " " + kind : "");
}

function when(t) {
  if (t === null || t === undefined) return "–";
  const d = typeof t === "number" ? new Date(t * 1000) : new Date(t);
  return d.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
}

// A panel whose route is not on this server (yet) says so instead of failing.
function unavailable(list, err) {
  list.replaceChildren(el("p", { class: "muted" }, err.status === 404 || err.status === 405
    ? "Not available on this server." : "Could not load: " + err.message));
}

// --------------------------------------------------------------------------- login

function showLogin() {
  $("#console").hidden = true; $("#who").hidden = true; $("#login").hidden = false;
  if (state.ws) { state.ws.close(); state.ws = null; }
}

async function start() {
  $("#login-error").hidden = new URLSearchParams(location.search).get("login") !== "failed";
  try {
    const session = await api("GET", "/api/session");
    state.csrf = session.csrf; state.user = session.user;
  } catch (err) { showLogin(); return; }
  $("#login").hidden = true; $("#console").hidden = false; $("#who").hidden = false;
  $("#who-name").textContent = state.user.name;
  $("#who-role").textContent = state.user.role;
  const admin = state.user.role === "admin";
  document.querySelectorAll(".admin-only").forEach((n) => { n.hidden = !admin; });
  if (location.search) history.replaceState(null, "", "/editor" + location.hash);
  try { state.config = await api("GET", "/api/console/config"); }
  catch (err) { state.config = { siteName: "", topics: [] }; }
  $("#site").textContent = (state.config.siteName || "Newsroom") + " console";
  $("#pv-site").textContent = state.config.siteName || "";
  renderTopics();
  connect();
  loadAlerts(); loadArticles(); loadApprovals();
  if (admin) { loadTokens(); loadUsers(); loadFeeds(); loadAudit(false); }
  preview();
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target);
  try {
    await api("POST", "/editor/login", { name: form.get("name"), password: form.get("password") });
    ev.target.reset();
    start();
  } catch (err) {
    const box = $("#login-error");
    box.textContent = err.code === "rate_limited" ? "Too many attempts; wait a little."
      : "The name or the password is wrong.";
    box.hidden = false;
  }
});

$("#logout").addEventListener("click", async () => {
  try { await api("POST", "/editor/logout"); } finally { state.csrf = ""; showLogin(); }
});

// --------------------------------------------------------------------------- compose

function renderTopics() {
  const box = $("#topics");
  box.replaceChildren(...state.config.topics.map((t) =>
    el("label", {}, el("input", { type: "checkbox", name: "topic", value: t }), t)));
  if (!state.config.topics.length) box.append(el("span", { class: "muted" }, "Push is off."));
}

function alertBody() {
  const f = $("#compose-form");
  const v = (name) => f.elements[name].value.trim();
  const body = { title: v("title"), url: v("url") };
  for (const k of ["body", "icon", "image"]) if (v(k)) body[k] = v(k);
  body.topics = [...f.querySelectorAll("input[name=topic]:checked")].map((n) => n.value);
  const langs = v("languages").split(",").map((s) => s.trim()).filter(Boolean);
  if (langs.length) body.languages = langs;
  if (v("urgency")) body.urgency = v("urgency");
  if (v("ttl")) body.ttl = Number(v("ttl"));
  if (v("collapse")) body.collapse = v("collapse");
  if (v("send_at")) body.send_at = new Date(v("send_at")).toISOString();
  return body;
}

function localPreview(body) {
  $("#pv-title").textContent = body.title || "Title";
  $("#pv-body").textContent = body.body || "";
  for (const [id, src] of [["#pv-icon", body.icon], ["#pv-image", body.image]]) {
    const img = $(id);
    if (src && /^https?:\/\//.test(src)) { img.src = src; img.hidden = false; }
    else { img.hidden = true; img.removeAttribute("src"); }
  }
}

function setCount(name, chars, max) {
  const node = document.querySelector(`[data-count=${name}]`);
  node.textContent = max ? `${chars}/${max}` : `${chars}`;
  node.classList.toggle("over", Boolean(max) && chars > max);
}

let previewTimer = null;
function preview() {
  const body = alertBody();
  localPreview(body);
  setCount("title", body.title.length); setCount("body", (body.body || "").length);
  clearTimeout(previewTimer);
  previewTimer = setTimeout(() => serverPreview(body), 300);  // debounced
}

async function serverPreview(body) {
  if (!body.title || !body.url) { say("#budget", "Title and link are needed for the budget."); return; }
  try {
    const p = await api("POST", "/api/alerts/preview", body);
    setCount("title", p.title.chars, p.title.max); setCount("body", p.body.chars, p.body.max);
    say("#budget", `${p.bytes} of ${p.maxBytes} bytes` + (p.fits ? "" : " — too large"),
        p.fits ? "good" : "bad");
    $("#audience").textContent = `Audience: ${p.audience.toLocaleString()} subscriber` +
      (p.audience === 1 ? "" : "s");
  } catch (err) {
    if (err.status === 404 || err.status === 405) say("#budget", "Preview is not available on this server.");
    else say("#budget", err.message, "bad");
    $("#audience").textContent = "";
  }
}

$("#compose-form").addEventListener("input", () => { state.confirmed = false; $("#confirm").hidden = true; preview(); });
$("#compose-form").addEventListener("reset", () => setTimeout(() => { state.idem = null; preview(); }, 0));

async function send() {
  const body = alertBody();
  if (!body.topics.length && !body.languages && !state.confirmed) {
    $("#confirm").hidden = false; $("#confirm-yes").focus(); return;
  }
  $("#confirm").hidden = true; state.confirmed = false;
  // One key per composed alert: a double tap or a retry after a timeout sends it once.
  state.idem = state.idem || (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random());
  $("#send").disabled = true;
  try {
    const a = await api("POST", "/api/alerts", body, { "Idempotency-Key": state.idem });
    say("#compose-status", `Alert ${a.id}: ${a.status}.`, "good");
    state.idem = null;
    upsertAlert(a);
  } catch (err) { say("#compose-status", err.message, "bad"); }
  finally { $("#send").disabled = false; }
}

$("#compose-form").addEventListener("submit", (ev) => { ev.preventDefault(); send(); });
$("#confirm-yes").addEventListener("click", () => { state.confirmed = true; send(); });
$("#confirm-no").addEventListener("click", () => { $("#confirm").hidden = true; });

function b64url(buf) {
  return btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
function fromB64url(s) {
  const raw = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

$("#test-send").addEventListener("click", async () => {
  say("#compose-status", "Subscribing this browser…");
  try {
    if (!("serviceWorker" in navigator) || !("PushManager" in window)) throw new Error("This browser has no Web Push.");
    if ((await Notification.requestPermission()) !== "granted") throw new Error("Notifications are blocked for this site.");
    const reg = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    await navigator.serviceWorker.ready;
    let sub = await reg.pushManager.getSubscription();
    const key = (await api("GET", "/api/push/vapid-public-key")).publicKey;
    if (!sub) sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: fromB64url(key) });
    const json = sub.toJSON();
    await api("POST", "/api/push/subscriptions", {
      subscription: { endpoint: json.endpoint, keys: json.keys }, vapidKey: key,
      language: (navigator.language || "en").split("-")[0],
      timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC" });
    const alert = alertBody(); delete alert.send_at;
    const sent = await api("POST", "/api/alerts/test", { alert, endpoint: json.endpoint });
    say("#compose-status", "Test sent to this browser" +
        (sent && sent.outcome ? ` (${sent.outcome}).` : "."), "good");
  } catch (err) {
    say("#compose-status", err.status === 404 ? "Test-send is not available on this server." : err.message, "bad");
  }
});

// --------------------------------------------------------------------------- alerts

const FINAL = new Set(["done", "cancelled", "expired"]);

function alertRow(a) {
  const c = a.counts || {};
  const done = (c.accepted || 0) + (c.failed || 0) + (c.pruned || 0);
  const targeted = c.targeted ?? a.total ?? 0;
  const pct = targeted ? Math.min(100, Math.round((100 * done) / targeted)) : (a.status === "done" ? 100 : 0);
  const r = a.receipts || {};
  const counts = `targeted ${targeted} · accepted ${c.accepted ?? 0} · failed ${c.failed ?? 0}` +
    ` · pruned ${c.pruned ?? 0} · retried ${c.retried ?? 0} · shown ${r.shown ?? 0} · clicked ${r.clicked ?? 0}`;
  const what = el("div", { class: "what" },
    el("div", {}, el("strong", {}, a.title || `Alert ${a.id}`)),
    el("div", { class: "meta" }, `#${a.id} · ${a.status}` + (a.sendAt ? ` · at ${when(a.sendAt)}` : "") +
      ` · ${(a.topics || []).join(", ") || "everyone"}`),
    el("div", { class: "meta counts" }, counts),
    el("div", { class: "bar-progress" }, el("span", { style: `width:${pct}%` })));
  const cancel = FINAL.has(a.status) ? null : el("button", { type: "button", class: "danger",
    onclick: async () => {
      try { upsertAlert(await api("POST", `/api/alerts/${a.id}/cancel`)); }
      catch (err) { say("#compose-status", err.message, "bad"); }
    } }, "Cancel");
  return el("div", { class: "item", "data-alert": a.id }, what, cancel);
}

function upsertAlert(a) {
  state.alerts.set(a.id, a);
  const list = $("#alerts-list");
  const row = alertRow(a);
  const old = list.querySelector(`[data-alert="${a.id}"]`);
  if (old) old.replaceWith(row); else list.prepend(row);
  list.querySelector("p.muted")?.remove();
}

async function loadAlerts() {
  const list = $("#alerts-list");
  try {
    const { alerts } = await api("GET", "/api/alerts?limit=50");
    list.replaceChildren(...alerts.map(alertRow));
    if (!alerts.length) list.append(el("p", { class: "muted" }, "No alerts yet."));
  } catch (err) { unavailable(list, err); }
}

// Live counts (console:alerts), the current banner (breaking) and new articles (headlines)
// over one WebSocket; the browser sends the session cookie with it, which is what lets
// console:* through.
function connect(delay = 1000) {
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  state.ws = ws;
  ws.onopen = () => {
    ws.send(JSON.stringify({ type: "subscribe", channels: ["console:alerts", "breaking", "headlines"] }));
    $("#live").textContent = "live";
  };
  ws.onmessage = (ev) => {
    const f = JSON.parse(ev.data);
    if (f.type === "message" && f.channel === "console:alerts" && f.data && f.data.id) upsertAlert(f.data);
    if (f.type === "message" && f.channel === "breaking") {
      $("#banner-now").textContent = f.data.clear ? "none" : f.data.title || "–";
    }
    if (f.type === "message" && f.channel === "headlines") articlesChanged(f.data);
    if (f.type === "error" && f.code === "forbidden_channel") $("#live").textContent = "not live (log in again)";
  };
  ws.onclose = () => {
    $("#live").textContent = "reconnecting…";
    if (state.ws === ws && state.user) setTimeout(() => connect(Math.min(delay * 2, 30000)), delay);
  };
}

// --------------------------------------------------------------------------- articles, approvals

function fill(article) {
  const f = $("#compose-form");
  f.reset();
  setTimeout(() => {
    f.elements.title.value = article.title || "";
    f.elements.body.value = article.summary || "";
    f.elements.url.value = article.url || "";
    f.elements.image.value = article.image || "";
    f.elements.languages.value = article.language || "";
    f.querySelectorAll("input[name=topic]").forEach((n) => { n.checked = n.value === article.category; });
    location.hash = "#compose";
    preview();
  }, 0);
}

function articleRow(a, extra) {
  return el("div", { class: "item" },
    el("div", { class: "what" }, el("strong", {}, a.title),
      el("div", { class: "meta" }, [a.category, a.language, when(a.published || a.updated),
        a.breaking ? "breaking" : null, a.approval].filter(Boolean).join(" · "))),
    ...extra);
}

// A new or changed article: reload the lists once a burst (a feed's first poll) is over.
let articlesTimer = 0;
let approvalsToo = false;
function articlesChanged(data) {
  approvalsToo = approvalsToo || Boolean(data && data.breaking);
  clearTimeout(articlesTimer);
  articlesTimer = setTimeout(() => {
    loadArticles();
    if (approvalsToo) loadApprovals();
    approvalsToo = false;
  }, 250);
}

async function loadArticles() {
  const list = $("#articles-list");
  try {
    const { articles } = await api("GET", "/api/articles?limit=50");
    list.replaceChildren(...articles.map((a) => articleRow(a, [
      el("button", { type: "button", onclick: () => fill(a) }, "Push this")])));
    if (!articles.length) list.append(el("p", { class: "muted" }, "No articles yet."));
  } catch (err) { unavailable(list, err); }
}

async function loadApprovals() {
  const list = $("#approvals-list");
  const decide = (a, action) => async () => {
    try { await api("POST", `/api/approvals/${a.id}`, { action }); loadApprovals(); loadAlerts(); }
    catch (err) { say("#compose-status", err.message, "bad"); }
  };
  try {
    const { articles } = await api("GET", "/api/approvals");
    list.replaceChildren(...articles.map((a) => articleRow(a, [
      el("button", { type: "button", class: "primary", onclick: decide(a, "send") }, "Send alert"),
      el("button", { type: "button", onclick: decide(a, "dismiss") }, "Dismiss")])));
    if (!articles.length) list.append(el("p", { class: "muted" }, "Nothing waits for approval."));
  } catch (err) { unavailable(list, err); }
}

// --------------------------------------------------------------------------- breaking banner

async function banner(data) {
  try {
    await api("POST", "/api/channels/breaking/messages", { data });
    say("#banner-status", data.clear ? "Banner cleared." : "Banner posted.", "good");
  } catch (err) { say("#banner-status", err.message, "bad"); }
}

$("#banner-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const f = ev.target, data = { title: f.elements.title.value.trim() };
  if (f.elements.url.value.trim()) data.url = f.elements.url.value.trim();
  banner(data);
});
$("#banner-clear").addEventListener("click", () => banner({ clear: true }));

// --------------------------------------------------------------------------- admin

async function loadTokens() {
  const list = $("#tokens-list");
  try {
    const { tokens } = await api("GET", "/api/tokens");
    list.replaceChildren(...tokens.map((t) => el("div", { class: "item" },
      el("div", { class: "what" }, el("strong", {}, t.name),
        el("div", { class: "meta" }, `#${t.id} · ${t.role} · ` + (t.revokedAt ? `revoked ${when(t.revokedAt)}` : `since ${when(t.createdAt)}`))),
      t.revokedAt ? null : el("button", { type: "button", class: "danger", onclick: async () => {
        try { await api("POST", `/api/tokens/${t.id}/revoke`); loadTokens(); loadAudit(false); }
        catch (err) { say("#admin-status", err.message, "bad"); }
      } }, "Revoke"))));
  } catch (err) { unavailable(list, err); }
}

$("#token-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  try {
    const t = await api("POST", "/api/tokens", { name: f.elements.name.value, role: f.elements.role.value });
    const box = $("#token-value");
    box.textContent = `Token for ${t.token.name} (copy it now, it is not shown again): ${t.value}`;
    box.hidden = false; f.reset(); loadTokens(); loadAudit(false);
  } catch (err) { say("#admin-status", err.message, "bad"); }
});

async function loadUsers() {
  const list = $("#users-list");
  try {
    const { users } = await api("GET", "/api/users");
    list.replaceChildren(...users.map((u) => el("div", { class: "item" },
      el("div", { class: "what" }, el("strong", {}, u.name),
        el("div", { class: "meta" }, `${u.role} · ` + (u.disabledAt ? "disabled" : `last login ${when(u.lastLoginAt)}`))),
      u.disabledAt || u.name === state.user.name ? null : el("button", { type: "button", class: "danger", onclick: async () => {
        try { await api("POST", `/api/users/${u.id}/disable`); loadUsers(); loadAudit(false); }
        catch (err) { say("#admin-status", err.message, "bad"); }
      } }, "Disable"))));
  } catch (err) { unavailable(list, err); }
}

$("#user-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  try {
    await api("POST", "/api/users", { name: f.elements.name.value.trim(), role: f.elements.role.value, password: f.elements.password.value });
    f.reset(); say("#admin-status", "User added.", "good"); loadUsers(); loadAudit(false);
  } catch (err) { say("#admin-status", err.message, "bad"); }
});

async function loadFeeds() {
  const list = $("#feeds-list");
  try {
    const { feeds } = await api("GET", "/api/feeds");
    list.replaceChildren(...feeds.map((fd) => el("div", { class: "item" },
      el("div", { class: "what" }, el("strong", {}, fd.name),
        el("div", { class: "meta" }, `${fd.url} · every ${fd.interval}s · ${fd.origin} · ${(fd.health || {}).status || ""}`)),
      fd.origin === "api" ? el("button", { type: "button", class: "danger", onclick: async () => {
        try { await api("DELETE", `/api/feeds/${encodeURIComponent(fd.name)}`); loadFeeds(); loadAudit(false); }
        catch (err) { say("#admin-status", err.message, "bad"); }
      } }, "Remove") : null)));
    if (!feeds.length) list.append(el("p", { class: "muted" }, "No feeds."));
  } catch (err) { unavailable(list, err); }
}

$("#feed-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  try {
    await api("POST", "/api/feeds", { name: f.elements.name.value.trim(), url: f.elements.url.value.trim() });
    f.reset(); loadFeeds(); loadAudit(false);
  } catch (err) { say("#admin-status", err.status === 404 ? "Feeds are not available on this server." : err.message, "bad"); }
});

async function loadAudit(more) {
  const list = $("#audit-list");
  const before = more && state.auditBefore ? `&before=${state.auditBefore}` : "";
  try {
    const { entries } = await api("GET", `/api/audit?limit=50${before}`);
    const rows = entries.map((e) => el("div", { class: "item" }, el("div", { class: "what" },
      el("strong", {}, `${e.action} ${e.target}`),
      el("div", { class: "meta" }, `${when(e.at)} · ${e.actor}` +
        (Object.keys(e.detail || {}).length ? ` · ${JSON.stringify(e.detail)}` : "")))));
    if (more) list.append(...rows); else list.replaceChildren(...rows);
    state.auditBefore = entries.length ? entries[entries.length - 1].id : state.auditBefore;
    $("#audit-more").hidden = entries.length < 50;
  } catch (err) { unavailable(list, err); }
}
$("#audit-more").addEventListener("click", () => loadAudit(true));

start();
