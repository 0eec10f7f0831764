/*! ticker widget: live clock, data ticker, headlines and breaking banner for any page.
 *
 * Embed with one tag (no framework, no build step, no dependencies):
 *
 *   <script src="https://ticker.example/widget.js"
 *           data-channels="clock,breaking,data:covid19,headlines" async></script>
 *
 * Attributes of the script tag:
 *   data-channels  comma-separated channels (default "clock,breaking,headlines"); one
 *                  language's or category's headlines instead: "headlines:en", "headlines:sport"
 *   data-url       the ticker server (default: where this script was loaded from)
 *   data-target    CSS selector of an element to render into (default: right after the tag)
 *   data-limit     how many headlines to keep on screen (default 8)
 *   data-locale    BCP 47 locale for dates and numbers (default "en-GB")
 *   data-title     heading above the headlines (default "Latest")
 *
 * The widget renders into the open Shadow DOM of a <ticker-widget> element, so the page's
 * styles do not reach in and the widget's styles do not leak out. Theme it with custom
 * properties on that element (they inherit into the shadow root):
 *   --ticker-font, --ticker-font-size, --ticker-fg, --ticker-muted, --ticker-bg,
 *   --ticker-border, --ticker-radius, --ticker-accent, --ticker-breaking-bg,
 *   --ticker-breaking-fg, --ticker-stale, --ticker-highlight
 * or through ::part(): root, bar, live, clock, status, breaking, data, stale, unavailable,
 * headlines, headline.
 *
 * State for integrators and tests: the host element carries
 * data-state="connecting|live|reconnecting" and data-transport="ws|sse", and fires
 * "ticker:state" and "ticker:message" events (they bubble). host.ticker offers
 * {state, offsetMs, now(), reconnect(), destroy()}.
 *
 * Protocol (see docs/contract.md): a WebSocket at /ws carrying JSON frames. The widget
 * subscribes with the positions it has already seen, so a reconnect resumes where it left
 * off; when the server answers recovered:false (history does not reach back that far, or
 * the server restarted) it refetches recent headlines over HTTP. If WebSockets keep failing
 * (a proxy that blocks them), it alternates with Server-Sent Events at /sse.
 */
(function () {
  "use strict";

  // document.currentScript is only set while this script first runs; grab it now.
  const SCRIPT = document.currentScript || findUnmountedScript();

  const DEFAULT_CHANNELS = ["clock", "breaking", "headlines"];
  const CHANNEL_RE = /^[a-z0-9][a-z0-9._:-]{0,63}$/;
  const LATEST_CHANNELS = ["clock", "breaking"]; // and every "data:*": current value on subscribe

  // Reconnect delays: full jitter over an exponentially growing ceiling, so a thousand
  // readers dropped by one restart do not come back in the same instant.
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_CAP_MS = 30000;
  const STABLE_MS = 5000; // a connection that stays up this long resets the backoff
  const TRY_AGAIN_FLOOR_MS = 2000; // 1013: the server found us slow; give it a moment
  const MISBEHAVED_FLOOR_MS = 15000; // 1008/1009: something is wrong on our side; go gently
  // A time request this often keeps the clock offset fresh and doubles as a liveness probe:
  // no frame at all for SILENCE_MS means the connection died without a close (sleep, NAT).
  const KEEPALIVE_MS = 25000;
  const SILENCE_MS = 65000;
  const WS_FAILURES_BEFORE_SSE = 3;
  const MAX_RTT_MS = 10000; // a time sample slower than this says little about the offset
  const SAMPLE_REFRESH_MS = 60000; // after this, any sample may replace the best one
  // A data channel's current value follows its "subscribed" frame at once; none by then
  // means the source has no value to give (say so rather than show nothing).
  const NO_VALUE_MS = 3000;

  const VALUE_LABELS = {
    confirmed: "Confirmed cases",
    recovered: "Recoveries",
    deaths: "Deaths",
    active: "Active cases",
    tested: "Tests",
    cases: "Cases",
  };

  const STYLE = `
:host { display: block; }
:host([hidden]) { display: none; }
/* all: initial cuts every inherited property off at the boundary, so a page's
   "div { color: red }" on an ancestor cannot reach in; custom properties still inherit,
   which is what theming relies on. */
.root {
  all: initial;
  display: block;
  box-sizing: border-box;
  font-family: var(--ticker-font, system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif);
  font-size: var(--ticker-font-size, 15px);
  line-height: 1.4;
  color: var(--ticker-fg, #1b1b1b);
  background: var(--ticker-bg, #ffffff);
  border: 1px solid var(--ticker-border, #dddddd);
  border-radius: var(--ticker-radius, 6px);
  overflow: hidden;
  text-align: left;
}
.root *, .root *::before, .root *::after { box-sizing: border-box; }
.root [hidden] { display: none !important; }
.bar {
  display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.3em 0.7em;
  padding: 0.55em 0.8em; border-bottom: 1px solid var(--ticker-border, #dddddd);
}
.live {
  display: inline-flex; align-items: center; gap: 0.35em;
  font-size: 0.72em; font-weight: 700; letter-spacing: 0.08em; text-transform: uppercase;
  color: var(--ticker-accent, #c70000);
}
.live::before {
  content: ""; width: 0.65em; height: 0.65em; border-radius: 50%; background: currentColor;
}
.root:not([data-state="live"]) .live { color: var(--ticker-muted, #6b6b6b); }
.clock { font-variant-numeric: tabular-nums; }
.clock-time { font-weight: 700; }
.clock-zone, .clock-date { color: var(--ticker-muted, #6b6b6b); }
.status { margin-left: auto; font-size: 0.8em; color: var(--ticker-muted, #6b6b6b); }
.status:empty { display: none; }
.root[data-state="reconnecting"] .status { color: var(--ticker-stale, #8a5300); font-weight: 600; }
/* The live region is always in the tree (screen readers announce changes to an existing
   region); with no content and no padding it takes no room. */
.breaking {
  background: var(--ticker-breaking-bg, #c70000); color: var(--ticker-breaking-fg, #ffffff);
  font-weight: 700;
}
.breaking.is-active { padding: 0.6em 0.8em; }
.breaking-label {
  display: inline-block; margin-right: 0.5em; padding: 0.05em 0.4em; border-radius: 3px;
  background: rgba(0, 0, 0, 0.22); font-size: 0.75em; letter-spacing: 0.06em;
  text-transform: uppercase; vertical-align: 0.1em;
}
.breaking a { color: inherit; }
.data { padding: 0.6em 0.8em; border-bottom: 1px solid var(--ticker-border, #dddddd); }
/* Figures never break inside a number; a narrow widget wraps whole items instead. */
.data-values { display: flex; flex-wrap: wrap; gap: 0.3em 1.3em; margin: 0; }
.data-item dt { font-size: 0.78em; color: var(--ticker-muted, #6b6b6b); }
.data-item dd {
  margin: 0; font-size: 1.15em; font-weight: 700; font-variant-numeric: tabular-nums;
  white-space: nowrap;
}
.data-meta { margin: 0.35em 0 0; font-size: 0.75em; color: var(--ticker-muted, #6b6b6b); }
.data-meta a { color: inherit; }
.data-note { margin: 0.2em 0 0; font-size: 0.75em; font-style: italic; color: var(--ticker-muted, #6b6b6b); }
.data-stale, .data-unavailable {
  display: inline-block; margin: 0.4em 0 0; padding: 0.1em 0.45em; border-radius: 3px;
  font-size: 0.75em; font-weight: 600;
  color: var(--ticker-stale, #8a5300); background: rgba(255, 170, 0, 0.16);
}
.data-unavailable { margin: 0; font-size: 0.9em; }
.section-title {
  margin: 0; padding: 0.65em 0.8em 0.1em; font-size: 0.72em; font-weight: 700;
  letter-spacing: 0.08em; text-transform: uppercase; color: var(--ticker-muted, #6b6b6b);
}
.headlines { list-style: none; margin: 0; padding: 0 0.8em 0.3em; }
.headline {
  display: flex; gap: 0.6em; padding: 0.5em 0;
  border-top: 1px solid var(--ticker-border, #dddddd);
}
.headline:first-child { border-top: 0; }
.headline-text { min-width: 0; }
.headline-link { color: inherit; font-weight: 600; text-decoration: none; }
.headline-link:hover, .headline-link:focus-visible {
  color: var(--ticker-accent, #c70000); text-decoration: underline;
}
.headline-summary { margin: 0.15em 0 0; font-size: 0.88em; color: var(--ticker-muted, #6b6b6b); }
.headline-image {
  flex: none; width: 64px; height: 48px; object-fit: cover; border-radius: 3px;
  background: var(--ticker-border, #dddddd);
}
.headline.is-new { animation: ticker-flash 2.5s ease-out; }
@keyframes ticker-flash {
  from { background: var(--ticker-highlight, #fff3c4); }
  to { background: transparent; }
}
@media (prefers-reduced-motion: reduce) { .headline.is-new { animation: none; } }
.empty { margin: 0; padding: 0.2em 0.8em 0.8em; font-size: 0.9em; color: var(--ticker-muted, #6b6b6b); }
`;

  // ---------------------------------------------------------------- small helpers

  function findUnmountedScript() {
    // Without currentScript (unusual loaders), take the last widget tag not yet mounted.
    const tags = document.querySelectorAll('script[src*="widget.js"]:not([data-ticker-mounted])');
    return tags.length ? tags[tags.length - 1] : null;
  }

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  function isOffset(value) {
    return Number.isInteger(value) && value >= 0;
  }

  function isLatestChannel(name) {
    return LATEST_CHANNELS.indexOf(name) !== -1 || name.indexOf("data:") === 0;
  }

  /** A link target we are willing to put in href: http(s) or site-relative, nothing else. */
  function safeUrl(value, base) {
    if (typeof value !== "string" || !value) return null;
    try {
      const url = new URL(value, base);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function humanize(key) {
    if (Object.prototype.hasOwnProperty.call(VALUE_LABELS, key)) return VALUE_LABELS[key];
    const words = String(key).replace(/[_-]+/g, " ").trim();
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  /** The offset of an ISO timestamp ("Z", "+05:30") in minutes, for servers that send no tz. */
  function isoOffsetMinutes(iso) {
    const m = /(?:([+-])(\d{2}):?(\d{2})|Z)$/.exec(String(iso || ""));
    if (!m || !m[1]) return 0;
    const minutes = Number(m[2]) * 60 + Number(m[3]);
    return m[1] === "-" ? -minutes : minutes;
  }

  // ---------------------------------------------------------------- configuration

  function readConfig(script) {
    const ds = script.dataset;
    const channels = (ds.channels || DEFAULT_CHANNELS.join(","))
      .split(",").map((s) => s.trim()).filter((s) => CHANNEL_RE.test(s));
    // The server lives where the script came from, unless data-url says otherwise. Taking
    // the script's directory (not just its origin) keeps working behind a path prefix.
    let base;
    try {
      base = ds.url ? new URL(ds.url, location.href) : new URL(".", script.src || location.href);
    } catch (e) {
      base = new URL("/", location.href);
    }
    if (!base.pathname.endsWith("/")) base.pathname += "/";
    const wsUrl = new URL("ws", base);
    wsUrl.protocol = base.protocol === "https:" ? "wss:" : "ws:";
    const limit = Math.min(200, Math.max(1, parseInt(ds.limit, 10) || 8));
    let locale = ds.locale || "en-GB";
    try {
      Intl.DateTimeFormat.supportedLocalesOf([locale]);
    } catch (e) {
      locale = "en-GB";
    }
    const unique = Array.from(new Set(channels.length ? channels : DEFAULT_CHANNELS));
    // One list of headlines: "headlines", or one language's or category's ("headlines:en").
    const headlines = unique.find((c) => c === "headlines" || c.indexOf("headlines:") === 0);
    return {
      channels: unique,
      headlines: headlines || "",
      base: base.href,
      wsUrl: wsUrl.href,
      sseUrl: new URL("sse", base).href,
      historyUrl: new URL("api/channels/" + encodeURIComponent(headlines || "headlines") +
        "/messages?limit=" + limit, base).href,
      target: ds.target || "",
      limit: limit,
      locale: locale,
      title: ds.title || "Latest",
    };
  }

  // ---------------------------------------------------------------- formatting

  const formatters = new Map();

  /** Intl formatters are costly to build; keep one per (kind, zone). */
  function formatter(locale, kind, timeZone) {
    const key = kind + "|" + timeZone + "|" + locale;
    let f = formatters.get(key);
    if (!f) {
      const options = kind === "time"
        ? { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }
        : { day: "numeric", month: "long", year: "numeric" };
      options.timeZone = timeZone;
      try {
        f = new Intl.DateTimeFormat(locale, options);
      } catch (e) {
        options.timeZone = "UTC"; // an IANA name this browser does not know
        f = new Intl.DateTimeFormat(locale, options);
      }
      formatters.set(key, f);
    }
    return f;
  }

  /** "14:40", "GMT", "19 July 2021" for an instant, shown in the server's zone. */
  function clockParts(ms, clock, locale) {
    let zone = typeof clock.tz === "string" && clock.tz ? clock.tz : null;
    if (!zone) {
      // An older server sends no IANA zone: apply the fixed offset its iso carries.
      ms += isoOffsetMinutes(clock.iso) * 60000;
      zone = "UTC";
    }
    const date = new Date(ms);
    return {
      time: formatter(locale, "time", zone).format(date),
      zone: typeof clock.zone === "string" ? clock.zone : "",
      date: formatter(locale, "date", zone).format(date),
    };
  }

  function formatValue(value, numbers) {
    if (typeof value === "number" && isFinite(value)) return numbers.format(value);
    if (typeof value === "string" && /^-?\d+(\.\d+)?$/.test(value)) return numbers.format(Number(value));
    if (value === null || value === undefined) return "–";
    return typeof value === "object" ? "–" : String(value);
  }

  /** "19 July 2021" for a day, "04:20 GMT 19 July 2021" for an instant (in the clock's zone). */
  function formatAsOf(value, locale, clock) {
    if (typeof value !== "string" || !value) return "";
    const day = /^\d{4}-\d{2}-\d{2}$/.test(value);
    const ms = Date.parse(day ? value + "T00:00:00Z" : value);
    if (isNaN(ms)) return value;
    if (day) return formatter(locale, "date", "UTC").format(new Date(ms));
    const parts = clockParts(ms, clock || { tz: "UTC", zone: "UTC" }, locale);
    return parts.time + " " + parts.zone + " " + parts.date;
  }

  // ---------------------------------------------------------------- the widget

  class Widget {
    constructor(host, cfg) {
      this.host = host;
      this.cfg = cfg;
      this.numbers = new Intl.NumberFormat(cfg.locale);
      this.state = "";
      this.positions = Object.create(null); // channel -> {epoch, offset} last seen
      this.conn = null; // {kind, send(obj)|null, close()}
      this.gen = 0; // bumped per connection; events of an older connection are ignored
      this.attempt = 0;
      this.wsFailures = 0; // WebSocket attempts in a row that never opened
      this.lastKind = "";
      this.timers = { retry: 0, keepalive: 0, stable: 0, tick: 0 };
      this.lastFrameAt = 0;
      this.destroyed = false;
      // Clock: offset = server - (t0 + t1) / 2 from the time exchange.
      this.offsetMs = 0;
      this.offsetKnown = false;
      this.bestRtt = Infinity;
      this.bestAt = 0;
      this.pendingTimes = new Set();
      this.clock = null;
      this.clockText = "";
      // Headlines, newest first; epochs are ranked by first sight (a restart starts a new,
      // newer numbering), offsets order within an epoch.
      this.headlines = [];
      this.epochRank = new Map();
      this.dataViews = new Map();
      this.build();
      this.listen();
      this.setState("connecting");
      this.connect();
    }

    // ---------------------------------------------------------- DOM

    build() {
      const shadow = this.host.attachShadow({ mode: "open" });
      const style = el("style");
      style.textContent = STYLE;
      const root = el("div", "root");
      root.setAttribute("part", "root");
      const has = (name) => this.cfg.channels.indexOf(name) !== -1;

      this.breaking = el("div", "breaking");
      this.breaking.setAttribute("part", "breaking");
      this.breaking.setAttribute("role", "alert");
      this.breaking.setAttribute("aria-live", "assertive");
      this.breaking.setAttribute("aria-atomic", "true");
      if (has("breaking")) root.appendChild(this.breaking);

      const bar = el("div", "bar");
      bar.setAttribute("part", "bar");
      const live = el("span", "live", "Live");
      live.setAttribute("part", "live");
      bar.appendChild(live);
      this.clockEl = el("time", "clock");
      this.clockEl.setAttribute("part", "clock");
      if (has("clock")) bar.appendChild(this.clockEl);
      this.statusEl = el("span", "status");
      this.statusEl.setAttribute("part", "status");
      this.statusEl.setAttribute("role", "status");
      bar.appendChild(this.statusEl);
      root.appendChild(bar);

      this.dataBox = el("div", "data-list");
      for (const name of this.cfg.channels) {
        if (name.indexOf("data:") === 0) this.dataView(name);
      }
      root.appendChild(this.dataBox);

      if (this.cfg.headlines) {
        const section = el("section", "headlines-section");
        const title = el("h2", "section-title", this.cfg.title);
        title.id = "ticker-headlines-title";
        this.list = el("ol", "headlines");
        this.list.setAttribute("part", "headlines");
        this.list.setAttribute("aria-labelledby", title.id);
        this.emptyEl = el("p", "empty", "No headlines yet.");
        section.append(title, this.list, this.emptyEl);
        root.appendChild(section);
        this.items = new Map(); // key -> <li>
      }
      shadow.append(style, root);
      this.root = root;
    }

    listen() {
      // Come back at once when the network or the tab does, instead of waiting out a backoff.
      this.onOnline = () => this.reconnectSoon();
      this.onVisible = () => {
        if (document.visibilityState === "visible") this.reconnectSoon();
      };
      // An open socket keeps a page out of the back/forward cache; let go on pagehide.
      this.onPageHide = (ev) => {
        if (ev.persisted) this.disconnect();
      };
      this.onPageShow = (ev) => {
        if (ev.persisted) this.reconnectNow();
      };
      window.addEventListener("online", this.onOnline);
      document.addEventListener("visibilitychange", this.onVisible);
      window.addEventListener("pagehide", this.onPageHide);
      window.addEventListener("pageshow", this.onPageShow);
    }

    setState(state) {
      if (state === this.state) return;
      this.state = state;
      this.host.setAttribute("data-state", state);
      this.root.setAttribute("data-state", state);
      this.statusEl.textContent =
        state === "reconnecting" ? "Reconnecting…" : state === "connecting" ? "Connecting…" : "";
      this.emit("ticker:state", { state: state });
    }

    emit(type, detail) {
      this.host.dispatchEvent(new CustomEvent(type, { detail: detail, bubbles: true }));
    }

    // ---------------------------------------------------------- connection

    connect() {
      clearTimeout(this.timers.retry);
      if (this.destroyed || this.conn) return;
      const gen = ++this.gen;
      const canSse = typeof EventSource !== "undefined";
      const useSse = canSse && (typeof WebSocket === "undefined" ||
        (this.wsFailures >= WS_FAILURES_BEFORE_SSE && this.lastKind === "ws"));
      this.lastKind = useSse ? "sse" : "ws";
      this.host.setAttribute("data-transport", this.lastKind);
      if (useSse) this.openSse(gen);
      else this.openWs(gen);
    }

    openWs(gen) {
      let ws;
      try {
        ws = new WebSocket(this.cfg.wsUrl);
      } catch (e) {
        this.dropped(gen, 0, false);
        return;
      }
      let opened = false;
      this.conn = {
        kind: "ws",
        send: (obj) => {
          if (ws.readyState === 1) ws.send(JSON.stringify(obj));
        },
        close: () => {
          try {
            ws.close(1000);
          } catch (e) { /* already closing */ }
        },
      };
      ws.onopen = () => {
        if (gen !== this.gen) return;
        opened = true;
        this.wsFailures = 0;
        this.lastFrameAt = Date.now();
        this.bestRtt = Infinity; // measure the offset afresh on every connection
        this.conn.send(this.subscribeFrame());
        this.sendTime();
        this.timers.keepalive = setInterval(() => this.keepalive(gen), KEEPALIVE_MS);
      };
      ws.onmessage = (ev) => {
        if (gen === this.gen && typeof ev.data === "string") this.receive(ev.data);
      };
      // onerror is always followed by onclose, which carries the code we act on.
      ws.onclose = (ev) => this.dropped(gen, ev.code, opened);
    }

    openSse(gen) {
      const url = new URL(this.cfg.sseUrl);
      url.searchParams.set("channels", this.cfg.channels.join(","));
      // The server resumes every channel whose epoch this id names (same as `since`).
      const id = Object.keys(this.positions)
        .map((ch) => this.positions[ch].epoch + ":" + this.positions[ch].offset).join(",");
      if (id) url.searchParams.set("lastEventId", id);
      let es;
      try {
        es = new EventSource(url.href);
      } catch (e) {
        this.dropped(gen, 0, false);
        return;
      }
      let opened = false;
      this.conn = { kind: "sse", send: null, close: () => es.close() };
      es.onopen = () => {
        opened = true;
      };
      es.onmessage = (ev) => {
        if (gen === this.gen) this.receive(ev.data);
      };
      es.onerror = () => {
        // EventSource would retry on its own, without our backoff or resume: take over.
        es.close();
        this.dropped(gen, 0, opened);
      };
    }

    subscribeFrame() {
      const since = {};
      for (const ch of this.cfg.channels) {
        if (this.positions[ch]) since[ch] = this.positions[ch];
      }
      return { type: "subscribe", channels: this.cfg.channels, since: since };
    }

    sendTime() {
      if (!this.conn || !this.conn.send) return;
      const t0 = Date.now();
      this.pendingTimes.add(t0);
      this.conn.send({ type: "time", t0: t0 });
    }

    keepalive(gen) {
      if (gen !== this.gen) return;
      if (Date.now() - this.lastFrameAt > SILENCE_MS) {
        this.conn.close();
        this.dropped(gen, 0, true);
        return;
      }
      this.sendTime();
    }

    /** The connection of generation `gen` ended (or never opened): plan the next try. */
    dropped(gen, code, opened) {
      if (gen !== this.gen || this.destroyed) return;
      this.gen++; // anything the old connection still says is ignored from here on
      clearInterval(this.timers.keepalive);
      clearTimeout(this.timers.stable);
      this.pendingTimes.clear();
      const kind = this.conn ? this.conn.kind : this.lastKind;
      this.conn = null;
      if (kind === "ws" && !opened) this.wsFailures++;
      this.setState("reconnecting");
      const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * Math.pow(2, this.attempt));
      this.attempt++;
      let floor = 0;
      if (code === 1013) floor = TRY_AGAIN_FLOOR_MS;
      if (code === 1008 || code === 1009) floor = MISBEHAVED_FLOOR_MS;
      const delay = floor + Math.random() * ceiling;
      this.timers.retry = setTimeout(() => this.connect(), delay);
    }

    disconnect() {
      if (this.conn) {
        const conn = this.conn;
        this.dropped(this.gen, 1000, true);
        conn.close();
      }
      clearTimeout(this.timers.retry);
    }

    reconnectNow() {
      if (this.destroyed) return;
      this.disconnect();
      this.connect();
    }

    /** After a wake-up or going back online: skip the rest of a pending backoff. */
    reconnectSoon() {
      if (!this.destroyed && !this.conn && this.state === "reconnecting") {
        clearTimeout(this.timers.retry);
        this.timers.retry = setTimeout(() => this.connect(), Math.random() * 1000);
      }
    }

    destroy() {
      this.disconnect();
      this.destroyed = true;
      clearTimeout(this.timers.tick);
      window.removeEventListener("online", this.onOnline);
      document.removeEventListener("visibilitychange", this.onVisible);
      window.removeEventListener("pagehide", this.onPageHide);
      window.removeEventListener("pageshow", this.onPageShow);
      this.host.remove();
    }

    // ---------------------------------------------------------- frames

    /** One frame from the server. Anything malformed is dropped, never thrown. */
    receive(text) {
      this.lastFrameAt = Date.now();
      let frame;
      try {
        frame = JSON.parse(text);
      } catch (e) {
        return;
      }
      if (!isObject(frame)) return;
      try {
        if (frame.type === "message") this.onMessage(frame);
        else if (frame.type === "subscribed") this.onSubscribed(frame);
        else if (frame.type === "time") this.onTime(frame);
        else if (frame.type === "error") this.onError(frame);
      } catch (e) {
        // A frame we could not render must not take the connection down with it.
        if (typeof console !== "undefined") console.error("ticker: bad frame", e);
      }
    }

    onError(frame) {
      if (typeof console !== "undefined") console.warn("ticker:", frame.code, frame.message);
      const ch = frame.channel;
      if (frame.code === "unknown_channel" && typeof ch === "string" &&
          ch.indexOf("data:") === 0 && this.cfg.channels.indexOf(ch) !== -1) {
        this.showUnavailable(ch); // the server has no such source (not configured)
      }
    }

    onSubscribed(frame) {
      const ch = frame.channel;
      if (this.cfg.channels.indexOf(ch) === -1 || typeof frame.epoch !== "string" ||
          !isOffset(frame.offset)) return;
      const before = this.positions[ch];
      this.positions[ch] = { epoch: frame.epoch, offset: frame.offset };
      if (this.state !== "live") {
        this.setState("live");
        clearTimeout(this.timers.stable);
        this.timers.stable = setTimeout(() => {
          this.attempt = 0;
        }, STABLE_MS);
      }
      if (ch === this.cfg.headlines && (!before || frame.recovered === false)) {
        this.refetchHeadlines();
      }
      // A latest-value channel that has a value sends it right after this frame; offset 0
      // in a fresh numbering means it has none (the banner was lost with a restart).
      if (ch === "breaking" && frame.recovered === false && frame.offset === 0) {
        this.showBreaking({ clear: true });
      }
      if (ch.indexOf("data:") === 0) {
        const view = this.dataView(ch);
        clearTimeout(view.waiting);
        if (!view.hasValue) view.waiting = setTimeout(() => this.showUnavailable(ch), NO_VALUE_MS);
      }
    }

    onMessage(frame) {
      const ch = frame.channel;
      if (this.cfg.channels.indexOf(ch) === -1 || typeof frame.epoch !== "string" ||
          !isOffset(frame.offset) || !isObject(frame.data)) return;
      const pos = this.positions[ch];
      if (pos && pos.epoch === frame.epoch && frame.offset <= pos.offset) return; // seen it
      this.positions[ch] = { epoch: frame.epoch, offset: frame.offset };
      if (ch === "clock") this.onClock(frame.data);
      else if (ch === "breaking") this.showBreaking(frame.data);
      else if (ch === this.cfg.headlines) this.addHeadlines([frame], true);
      else if (ch.indexOf("data:") === 0) this.showData(ch, frame.data);
      this.emit("ticker:message", { channel: ch, epoch: frame.epoch, offset: frame.offset,
        data: frame.data });
    }

    onTime(frame) {
      const t0 = frame.t0;
      if (!this.pendingTimes.has(t0) || typeof frame.server !== "number" ||
          !isFinite(frame.server)) return;
      this.pendingTimes.delete(t0);
      const t1 = Date.now();
      const rtt = t1 - t0;
      if (rtt < 0 || rtt > MAX_RTT_MS) return;
      // The fastest round trip bounds the error best; refresh now and then anyway, in
      // case the reader's clock was changed under us.
      if (rtt <= this.bestRtt || t1 - this.bestAt > SAMPLE_REFRESH_MS) {
        this.bestRtt = rtt;
        this.bestAt = t1;
        this.offsetMs = frame.server - (t0 + t1) / 2;
        this.offsetKnown = true;
        this.renderClock();
      }
    }

    // ---------------------------------------------------------- clock

    /** The server's idea of now, in ms since the epoch (null before we know it). */
    now() {
      return this.offsetKnown ? Date.now() + this.offsetMs : null;
    }

    onClock(data) {
      if (!isObject(data) || typeof data.ms !== "number") return;
      this.clock = data;
      this.renderClock();
    }

    renderClock() {
      clearTimeout(this.timers.tick);
      if (!this.clock || this.destroyed) return;
      // Before the time exchange answers, show the instant the clock message names.
      const now = this.now();
      const ms = now === null ? this.clock.ms : now;
      const parts = clockParts(ms, this.clock, this.cfg.locale);
      const text = parts.time + " " + parts.zone + " " + parts.date;
      if (text !== this.clockText) {
        this.clockText = text;
        this.clockEl.replaceChildren(
          el("span", "clock-time", parts.time), " ",
          el("span", "clock-zone", parts.zone), " ",
          el("span", "clock-date", parts.date));
        this.clockEl.setAttribute("datetime", new Date(ms).toISOString());
      }
      if (now !== null) {
        // Tick on the (corrected) second so the minute turns when the server's does.
        this.timers.tick = setTimeout(() => this.renderClock(), 1000 - (now % 1000) + 20);
      }
    }

    // ---------------------------------------------------------- breaking

    showBreaking(data) {
      const box = this.breaking;
      const title = typeof data.title === "string" ? data.title.trim() : "";
      if (data.clear === true || !title) {
        box.replaceChildren();
        box.classList.remove("is-active");
        this.host.removeAttribute("data-breaking");
        return;
      }
      const url = safeUrl(data.url, this.cfg.base);
      const text = url ? el("a", "breaking-title", title) : el("span", "breaking-title", title);
      if (url) text.href = url;
      box.replaceChildren(el("span", "breaking-label", "Breaking"), text);
      box.classList.add("is-active");
      this.host.setAttribute("data-breaking", "");
    }

    // ---------------------------------------------------------- data tickers

    dataView(channel) {
      let view = this.dataViews.get(channel);
      if (!view) {
        const section = el("section", "data");
        section.setAttribute("part", "data");
        section.setAttribute("data-channel", channel);
        section.setAttribute("aria-label", humanize(channel.slice(5)));
        section.hidden = true; // until its first value
        const values = el("dl", "data-values");
        const unavailable = el("p", "data-unavailable", "Figures unavailable");
        unavailable.setAttribute("part", "unavailable");
        unavailable.hidden = true;
        const meta = el("p", "data-meta");
        meta.hidden = true;
        const note = el("p", "data-note");
        note.hidden = true;
        const stale = el("p", "data-stale", "Live figures unavailable: these may be out of date");
        stale.setAttribute("part", "stale");
        stale.hidden = true;
        section.append(values, unavailable, meta, note, stale);
        this.dataBox.appendChild(section);
        view = { section: section, values: values, unavailable: unavailable, meta: meta,
          note: note, stale: stale, hasValue: false, waiting: 0 };
        this.dataViews.set(channel, view);
      }
      return view;
    }

    /** A value on data:<source>. No values at all (a source never read yet) is shown as
     * "unavailable" with its attribution; stale values stay, marked as such. */
    showData(channel, data) {
      if (!isObject(data.values)) return;
      const view = this.dataView(channel);
      clearTimeout(view.waiting);
      const keys = Object.keys(data.values);
      const items = keys.map((key) => {
        const item = el("div", "data-item");
        item.setAttribute("data-key", key);
        item.append(el("dt", "", humanize(key)),
          el("dd", "", formatValue(data.values[key], this.numbers)));
        return item;
      });
      view.values.replaceChildren(...items);
      view.hasValue = keys.length > 0;
      this.showMeta(view, data);
      const stale = data.stale === true;
      this.markData(view, !view.hasValue, stale && view.hasValue);
    }

    /** "Source: <attribution, linked> · as of …", and the payload's note (e.g. a sample). */
    showMeta(view, data) {
      const parts = [];
      if (typeof data.attribution === "string" && data.attribution) {
        const url = safeUrl(data.url, this.cfg.base);
        const who = el(url ? "a" : "span", "data-attribution", data.attribution);
        if (url) {
          who.href = url;
          who.rel = "noopener";
          who.target = "_blank";
        }
        parts.push("Source: ", who);
      }
      const asOf = formatAsOf(data.as_of, this.cfg.locale, this.clock);
      if (asOf) parts.push((parts.length ? " · " : "") + "as of " + asOf);
      view.meta.replaceChildren(...parts);
      view.meta.hidden = parts.length === 0;
      const note = typeof data.note === "string" ? data.note.trim() : "";
      view.note.textContent = note;
      view.note.hidden = !note;
    }

    /** No value to show (unknown channel, or none came): say so instead of nothing. */
    showUnavailable(channel) {
      const view = this.dataView(channel);
      if (view.hasValue) return;
      view.values.replaceChildren();
      this.markData(view, true, false);
    }

    markData(view, unavailable, stale) {
      view.values.hidden = unavailable;
      view.unavailable.hidden = !unavailable;
      view.stale.hidden = !stale;
      view.section.classList.toggle("is-stale", stale);
      view.section.classList.toggle("is-unavailable", unavailable);
      view.section.setAttribute("data-status", unavailable ? "unavailable" : stale ? "stale" : "live");
      view.section.hidden = false;
    }

    // ---------------------------------------------------------- headlines

    async refetchHeadlines() {
      if (!this.list) return;
      let body;
      try {
        const resp = await fetch(this.cfg.historyUrl, { cache: "no-store", credentials: "omit" });
        if (!resp.ok) return;
        body = await resp.json();
      } catch (e) {
        return; // live messages still arrive; the next recovered:false tries again
      }
      if (this.destroyed || !isObject(body) || !Array.isArray(body.messages)) return;
      const valid = body.messages.filter((m) => isObject(m) && m.channel === this.cfg.headlines &&
        typeof m.epoch === "string" && isOffset(m.offset) && isObject(m.data));
      this.addHeadlines(valid, false);
    }

    rank(epoch) {
      if (!this.epochRank.has(epoch)) this.epochRank.set(epoch, this.epochRank.size);
      return this.epochRank.get(epoch);
    }

    addHeadlines(messages, live) {
      if (!this.list) return;
      const known = new Set(this.headlines.map((h) => h.key));
      let changed = false;
      for (const m of messages) {
        const key = m.epoch + ":" + m.offset;
        const title = typeof m.data.title === "string" ? m.data.title.trim() : "";
        if (known.has(key) || !title) continue;
        known.add(key);
        this.headlines.push({ key: key, rank: this.rank(m.epoch), offset: m.offset,
          data: m.data, fresh: live });
        changed = true;
      }
      if (!changed) return;
      this.headlines.sort((a, b) => (b.rank - a.rank) || (b.offset - a.offset));
      this.headlines.length = Math.min(this.headlines.length, this.cfg.limit);
      this.renderHeadlines();
    }

    renderHeadlines() {
      const keep = new Set();
      this.headlines.forEach((h, index) => {
        keep.add(h.key);
        let li = this.items.get(h.key);
        if (!li) {
          li = this.headlineItem(h);
          this.items.set(h.key, li);
        }
        if (this.list.children[index] !== li) {
          this.list.insertBefore(li, this.list.children[index] || null);
        }
      });
      for (const [key, li] of this.items) {
        if (!keep.has(key)) {
          li.remove();
          this.items.delete(key);
        }
      }
      this.emptyEl.hidden = this.headlines.length > 0;
    }

    headlineItem(h) {
      const li = el("li", "headline");
      li.setAttribute("part", "headline");
      li.setAttribute("data-key", h.key);
      const image = safeUrl(h.data.image, this.cfg.base);
      if (image) {
        const img = el("img", "headline-image");
        img.src = image;
        img.alt = "";
        img.loading = "lazy";
        li.appendChild(img);
      }
      const box = el("div", "headline-text");
      const url = safeUrl(h.data.url, this.cfg.base);
      const title = el(url ? "a" : "span", "headline-link", h.data.title.trim());
      if (url) title.href = url;
      box.appendChild(title);
      if (typeof h.data.summary === "string" && h.data.summary.trim()) {
        box.appendChild(el("p", "headline-summary", h.data.summary.trim()));
      }
      li.appendChild(box);
      if (h.fresh) {
        li.classList.add("is-new");
        li.addEventListener("animationend", () => li.classList.remove("is-new"), { once: true });
      }
      return li;
    }
  }

  // ---------------------------------------------------------------- mounting

  function mount(script) {
    const cfg = readConfig(script);
    let parent = null;
    if (cfg.target) {
      try {
        parent = document.querySelector(cfg.target);
      } catch (e) {
        parent = null; // not a valid selector
      }
      if (!parent && document.readyState === "loading") {
        // An async script can run before the target is parsed.
        document.addEventListener("DOMContentLoaded", () => mount(script), { once: true });
        return;
      }
      if (!parent && typeof console !== "undefined") {
        console.warn("ticker: no element matches data-target", cfg.target);
      }
    }
    if (!parent && (!script.parentNode || script.parentNode === document.head)) {
      if (!document.body) {
        document.addEventListener("DOMContentLoaded", () => mount(script), { once: true });
        return;
      }
      parent = document.body;
    }
    const host = document.createElement("ticker-widget");
    host.setAttribute("data-channels", cfg.channels.join(","));
    if (parent) parent.appendChild(host);
    else script.parentNode.insertBefore(host, script.nextSibling);
    const widget = new Widget(host, cfg);
    host.ticker = Object.freeze({
      get state() { return widget.state; },
      get offsetMs() { return widget.offsetKnown ? widget.offsetMs : null; },
      now: () => widget.now(),
      reconnect: () => widget.reconnectNow(),
      destroy: () => widget.destroy(),
    });
  }

  if (SCRIPT && !SCRIPT.hasAttribute("data-ticker-mounted")) {
    SCRIPT.setAttribute("data-ticker-mounted", "");
    mount(SCRIPT);
  }
})();
