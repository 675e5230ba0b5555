/*
 * Consular assistance web chat widget.
 *
 * Embedding: load webchat.css (after GOV.UK Frontend's CSS) and this script,
 * then add a container such as
 *
 *   <div data-consular-webchat
 *        data-api-base="https://chat.example.org"   (optional; default: this origin)
 *        data-title="Chat with us"                   (optional heading text)
 *        data-heading-level="2"                      (optional, 2 to 4)
 *        data-max-length="2000"                      (optional)
 *        data-emergency-phone="+44 20 7008 5000">    (optional)
 *     fallback content for browsers without JavaScript
 *   </div>
 *
 * The widget replaces the container's content. Every piece of text from the
 * server (bot, officer or citizen) is written with textContent. The one
 * exception is a guidance reply's `html` (already sanitised by the server):
 * it is parsed into an inert document with DOMParser, where nothing loads or
 * runs, and rebuilt element by element from an allow-list (paragraphs, lists,
 * emphasis, code, line breaks and http/https/mailto/tel links); everything
 * else is dropped or reduced to its text. No HTML string is ever assigned to
 * the live page.
 *
 * The session (id and token) is kept in sessionStorage, not localStorage: it
 * survives a reload or a visit to a linked page in the same tab, and is gone
 * when the tab is closed, so the next person at a shared computer (an
 * internet cafe, a hotel lobby) cannot open someone else's conversation.
 */
(function () {
  "use strict";

  var API_PATH = "/api/webchat/sessions";
  var STORAGE_PREFIX = "consular-webchat:";
  var DEFAULT_MAX_LENGTH = 2000;
  var DEFAULT_PHONE = "+44 20 7008 5000";
  var POST_TIMEOUT_MS = 30000;
  var GET_TIMEOUT_MS = 15000;
  var RECONNECT_BASE_MS = 1000;
  var RECONNECT_MAX_MS = 30000;
  var ANNOUNCEMENTS_KEPT = 6;
  var RICH_DEPTH_MAX = 16;
  var SCROLL_STICK_PX = 80;
  var LOADING_TEXT = "Loading your conversation\u2026";

  var SENDER_LABELS = {
    citizen: "You",
    bot: "Consular assistant",
    officer: "Consular officer",
    system: "Update",
    notice: "Update"
  };

  var instanceCount = 0;

  /* ----------------------------------------------------------------- helpers */

  /**
   * Creates an element. `options.text` is set with textContent; `options.attrs`
   * with setAttribute (never event handlers or HTML).
   */
  function el(tag, options, children) {
    var node = document.createElement(tag);
    options = options || {};
    if (options.className) {
      node.className = options.className;
    }
    if (options.text !== undefined && options.text !== null) {
      node.textContent = String(options.text);
    }
    if (options.attrs) {
      Object.keys(options.attrs).forEach(function (name) {
        var value = options.attrs[name];
        if (value === true) {
          node.setAttribute(name, "");
        } else if (value !== false && value !== null && value !== undefined) {
          node.setAttribute(name, String(value));
        }
      });
    }
    (children || []).forEach(function (child) {
      if (child) {
        node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
      }
    });
    return node;
  }

  function removeChildren(node) {
    while (node.firstChild) {
      node.removeChild(node.firstChild);
    }
  }

  /*
   * Guidance HTML. The server sends an allow-listed subset; this is a second,
   * independent allow-list, so a mistake on either side is not enough.
   */
  var RICH_TAGS = {
    P: "p",
    UL: "ul",
    OL: "ol",
    LI: "li",
    STRONG: "strong",
    B: "strong",
    EM: "em",
    I: "em",
    CODE: "code",
    BR: "br",
    A: "a"
  };
  var RICH_CLASSES = {
    p: "webchat__para",
    ul: "govuk-list govuk-list--bullet webchat__list",
    ol: "govuk-list govuk-list--number webchat__list",
    a: "govuk-link"
  };
  // Dropped together with everything inside them.
  var RICH_DROPPED = [
    "SCRIPT", "STYLE", "TEMPLATE", "NOSCRIPT", "IFRAME", "FRAME", "FRAMESET", "OBJECT",
    "EMBED", "APPLET", "SVG", "MATH", "IMG", "PICTURE", "VIDEO", "AUDIO", "CANVAS",
    "FORM", "INPUT", "BUTTON", "SELECT", "TEXTAREA", "HEAD", "TITLE", "META", "LINK", "BASE"
  ];
  var LINK_PROTOCOLS = ["https:", "http:", "mailto:", "tel:"];

  /** An absolute URL with an allowed scheme, or null. */
  function safeHref(raw) {
    if (typeof raw !== "string" || raw.trim() === "") {
      return null;
    }
    var url;
    try {
      url = new URL(raw.trim(), window.location.href);
    } catch (error) {
      return null;
    }
    return LINK_PROTOCOLS.indexOf(url.protocol) === -1 ? null : url.href;
  }

  function copyAllowed(from, to, depth) {
    if (depth > RICH_DEPTH_MAX) {
      to.appendChild(document.createTextNode(from.textContent || ""));
      return;
    }
    for (var node = from.firstChild; node; node = node.nextSibling) {
      if (node.nodeType === 3) {
        to.appendChild(document.createTextNode(node.nodeValue));
        continue;
      }
      if (node.nodeType !== 1) {
        continue; // comments, processing instructions
      }
      var name = String(node.nodeName).toUpperCase();
      if (RICH_DROPPED.indexOf(name) !== -1) {
        continue;
      }
      var tag = RICH_TAGS[name];
      var href = tag === "a" ? safeHref(node.getAttribute("href")) : null;
      if (!tag || (tag === "a" && !href)) {
        copyAllowed(node, to, depth + 1); // keep the words, lose the element
        continue;
      }
      var copy = document.createElement(tag);
      if (RICH_CLASSES[tag]) {
        copy.className = RICH_CLASSES[tag];
      }
      if (href) {
        copy.setAttribute("href", href);
        copy.setAttribute("rel", "noopener noreferrer");
      }
      if (tag !== "br") {
        copyAllowed(node, copy, depth + 1);
      }
      to.appendChild(copy);
    }
  }

  /**
   * The allow-listed content of `html` as a fragment of new elements, or null
   * when there is nothing to show. DOMParser documents have no browsing
   * context: their scripts never run and their images never load.
   */
  function safeFragment(html) {
    if (typeof html !== "string" || html.trim() === "" || typeof window.DOMParser !== "function") {
      return null;
    }
    var doc;
    try {
      doc = new window.DOMParser().parseFromString(html, "text/html");
    } catch (error) {
      return null;
    }
    if (!doc || !doc.body) {
      return null;
    }
    var fragment = document.createDocumentFragment();
    copyAllowed(doc.body, fragment, 0);
    return (fragment.textContent || "").trim() === "" ? null : fragment;
  }

  /** Length in Unicode code points, as the server counts it. */
  function codePointLength(text) {
    return Array.from(text).length;
  }

  function formatNumber(value) {
    try {
      return value.toLocaleString("en-GB");
    } catch (error) {
      return String(value);
    }
  }

  function newClientMessageId() {
    var cryptoApi = window.crypto;
    if (cryptoApi && typeof cryptoApi.randomUUID === "function") {
      return cryptoApi.randomUUID();
    }
    var bytes = new Uint8Array(16);
    if (cryptoApi && cryptoApi.getRandomValues) {
      cryptoApi.getRandomValues(bytes);
    } else {
      for (var i = 0; i < bytes.length; i += 1) {
        bytes[i] = Math.floor(Math.random() * 256);
      }
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map
      .call(bytes, function (b) {
        return (b + 0x100).toString(16).slice(1);
      })
      .join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
  }

  /** Server timestamps without a zone are taken to be UTC. */
  function parseTimestamp(value) {
    if (typeof value !== "string" || !value) {
      return new Date();
    }
    var hasZone = /(Z|[+-]\d\d:?\d\d)$/i.test(value);
    var date = new Date(hasZone ? value : value + "Z");
    return isNaN(date.getTime()) ? new Date() : date;
  }

  function formatTime(date) {
    try {
      return date.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
    } catch (error) {
      return "";
    }
  }

  function messageOrder(id) {
    var number = Number(id);
    return isFinite(number) ? number : Number.MAX_SAFE_INTEGER;
  }

  function storageGet(key) {
    try {
      var raw = window.sessionStorage.getItem(key);
      if (!raw) {
        return null;
      }
      var data = JSON.parse(raw);
      if (data && typeof data.sessionId === "string" && typeof data.token === "string") {
        return { sessionId: data.sessionId, token: data.token };
      }
    } catch (error) {
      /* storage disabled or corrupt: behave as if empty */
    }
    return null;
  }

  function storageSet(key, session) {
    try {
      window.sessionStorage.setItem(key, JSON.stringify(session));
    } catch (error) {
      /* the chat still works, it just will not survive a reload */
    }
  }

  function storageClear(key) {
    try {
      window.sessionStorage.removeItem(key);
    } catch (error) {
      /* nothing to do */
    }
  }

  /* ------------------------------------------------------------------ widget */

  function Webchat(container) {
    instanceCount += 1;
    this.container = container;
    this.idPrefix = "webchat-" + instanceCount + "-";

    var base = (container.getAttribute("data-api-base") || "").trim().replace(/\/+$/, "");
    this.apiBase = base;
    this.apiRoot = new URL((base || "") + API_PATH, window.location.href);
    this.storageKey = STORAGE_PREFIX + this.apiRoot.href;
    var max = parseInt(container.getAttribute("data-max-length") || "", 10);
    this.maxLength = max > 0 ? max : DEFAULT_MAX_LENGTH;
    this.phone = container.getAttribute("data-emergency-phone") || DEFAULT_PHONE;
    this.title = container.getAttribute("data-title") || "Chat with us";
    var level = parseInt(container.getAttribute("data-heading-level") || "2", 10);
    this.headingLevel = level >= 2 && level <= 4 ? level : 2;

    this.session = null;
    this.messages = new Map(); // server id -> record
    this.pending = []; // citizen messages not yet matched to a server id
    this.payloadTitles = new Map(); // button payload -> button title
    this.syncedId = 0; // we hold every message up to here
    this.sending = false;
    this.fetchChain = Promise.resolve();

    this.ws = null;
    this.wsOpen = false;
    this.wsSynced = false;
    this.wsMaxId = 0;
    this.everConnected = false;
    this.dropAnnounced = false;
    this.reconnectAttempts = 0;
    this.reconnectTimer = null;
    this.suspended = false;

    this.build();
    this.bindGlobalEvents();
    this.start();
  }

  /* ---------------------------------------------------------------- building */

  Webchat.prototype.build = function () {
    var ids = {
      title: this.idPrefix + "title",
      log: this.idPrefix + "log",
      input: this.idPrefix + "input",
      hint: this.idPrefix + "hint",
      error: this.idPrefix + "error",
      count: this.idPrefix + "count",
      summaryTitle: this.idPrefix + "summary-title",
      live: this.idPrefix + "live",
      alert: this.idPrefix + "alert"
    };
    this.ids = ids;

    this.heading = el("h" + this.headingLevel, {
      className: "govuk-heading-m webchat__title",
      text: this.title,
      attrs: { id: ids.title }
    });

    this.connection = el("p", {
      className: "govuk-body-s webchat__connection",
      attrs: { hidden: true }
    });

    this.emptyState = el("p", {
      className: "govuk-body webchat__empty",
      text: "No messages yet. Type your question below to start, for example \u201cI have lost my passport\u201d."
    });
    this.list = el("ol", { className: "webchat__messages" });
    this.log = el(
      "div",
      {
        className: "webchat__log",
        attrs: {
          id: ids.log,
          role: "region",
          "aria-label": "Conversation",
          tabindex: "0"
        }
      },
      [this.emptyState, this.list]
    );

    // New bot, officer and system messages are read out from this log. The
    // visible transcript itself is not live, so the citizen's own words and a
    // restored history are not read out again. Urgent replies and errors go
    // to the assertive region instead, so they interrupt.
    this.announcer = el("div", {
      className: "govuk-visually-hidden webchat__live",
      attrs: {
        id: ids.live,
        role: "log",
        "aria-live": "polite",
        "aria-atomic": "false",
        "aria-relevant": "additions",
        "aria-label": "New messages"
      }
    });
    this.alertRegion = el("div", {
      className: "govuk-visually-hidden webchat__alert",
      attrs: {
        id: ids.alert,
        "aria-live": "assertive",
        "aria-atomic": "false",
        "aria-relevant": "additions"
      }
    });

    // A GOV.UK error summary for problems with sending; the same words are
    // shown next to the field and announced through the assertive region.
    this.summaryLink = el("a", { attrs: { href: "#" + ids.input } });
    this.summary = el(
      "div",
      {
        className: "govuk-error-summary webchat__error-summary",
        attrs: { hidden: true, "aria-labelledby": ids.summaryTitle, tabindex: "-1" }
      },
      [
        el("h" + Math.min(this.headingLevel + 1, 6), {
          className: "govuk-error-summary__title",
          text: "There is a problem",
          attrs: { id: ids.summaryTitle }
        }),
        el("div", { className: "govuk-error-summary__body" }, [
          el("ul", { className: "govuk-list govuk-error-summary__list" }, [el("li", {}, [this.summaryLink])])
        ])
      ]
    );

    this.label = el("label", {
      className: "govuk-label govuk-label--s",
      text: "Your message",
      attrs: { for: ids.input }
    });
    this.hint = el("div", {
      className: "govuk-hint",
      text:
        "Do not include passport numbers, bank details or medical information. " +
        "Press Enter to send, or Shift and Enter for a new line.",
      attrs: { id: ids.hint }
    });
    this.errorMessage = el("p", {
      className: "govuk-error-message",
      attrs: { id: ids.error, hidden: true }
    });
    this.input = el("textarea", {
      className: "govuk-textarea webchat__input",
      attrs: {
        id: ids.input,
        name: "message",
        rows: "3",
        autocomplete: "off",
        "aria-describedby": ids.hint + " " + ids.count
      }
    });
    this.count = el("div", {
      className: "govuk-hint govuk-character-count__message webchat__count",
      text: "You can enter up to " + formatNumber(this.maxLength) + " characters",
      attrs: { id: ids.count }
    });
    this.formGroup = el("div", { className: "govuk-form-group webchat__form-group" }, [
      this.label,
      this.hint,
      this.errorMessage,
      this.input,
      this.count
    ]);

    this.sendButton = el("button", {
      className: "govuk-button webchat__send",
      text: "Send",
      attrs: { type: "submit" }
    });
    this.restartButton = el("button", {
      className: "govuk-button govuk-button--secondary webchat__restart",
      text: "Start a new conversation",
      attrs: { type: "button", hidden: true }
    });
    this.form = el("form", { className: "webchat__form", attrs: { novalidate: true } }, [
      this.formGroup,
      el("div", { className: "govuk-button-group" }, [this.sendButton, this.restartButton])
    ]);

    this.section = el(
      "section",
      { className: "webchat__panel", attrs: { "aria-labelledby": ids.title } },
      [this.heading, this.connection, this.log, this.announcer, this.alertRegion, this.summary, this.form]
    );

    removeChildren(this.container);
    this.container.classList.add("webchat--ready");
    this.container.appendChild(this.section);

    var self = this;
    this.form.addEventListener("submit", function (event) {
      event.preventDefault();
      self.submitTyped();
    });
    this.input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !event.altKey && !event.ctrlKey && !event.metaKey) {
        event.preventDefault();
        self.submitTyped();
      }
    });
    this.input.addEventListener("input", function () {
      self.updateCount();
    });
    this.restartButton.addEventListener("click", function () {
      self.restart();
    });
    this.summaryLink.addEventListener("click", function (event) {
      event.preventDefault();
      self.input.focus();
    });
  };

  Webchat.prototype.bindGlobalEvents = function () {
    var self = this;
    window.addEventListener("online", function () {
      if (self.session && !self.wsOpen) {
        self.reconnectNow();
        return;
      }
      // The socket may have survived a short outage: just check for anything missed.
      self.hideConnection();
      if (self.session) {
        self.catchUp(true);
      }
    });
    window.addEventListener("offline", function () {
      self.showConnection(
        self.session
          ? "You are offline. The chat will reconnect when your connection is back."
          : "You are offline. Check your connection before sending a message."
      );
    });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") {
        self.reconnectNow();
      }
    });
    window.addEventListener("pagehide", function () {
      self.suspended = true;
      self.closeSocket();
    });
    window.addEventListener("pageshow", function (event) {
      if (event.persisted) {
        self.suspended = false;
        self.reconnectNow();
      }
    });
  };

  /* ---------------------------------------------------------------- session */

  Webchat.prototype.start = function () {
    var stored = storageGet(this.storageKey);
    if (!stored) {
      this.updateEmptyState();
      return;
    }
    this.session = stored;
    this.restartButton.hidden = false;
    this.showConnection(LOADING_TEXT);
    var self = this;
    this.catchUp(false).then(function () {
      if (self.connection.textContent === LOADING_TEXT) {
        self.hideConnection();
      }
      if (self.session && self.messages.size > 0) {
        self.announce("Your conversation so far has been restored.");
      }
      if (self.session) {
        self.connect();
      }
    });
  };

  Webchat.prototype.ensureSession = function () {
    if (this.session) {
      return Promise.resolve(this.session);
    }
    var self = this;
    return this.request("POST", this.apiRoot.href, null, null, POST_TIMEOUT_MS).then(function (res) {
      var data = res.data || {};
      if (!res.ok || typeof data.session_id !== "string" || typeof data.token !== "string") {
        var error = new Error("could not start a chat session (HTTP " + res.status + ")");
        error.status = res.status;
        error.response = res;
        throw error;
      }
      self.session = { sessionId: data.session_id, token: data.token };
      self.syncedId = 0;
      storageSet(self.storageKey, self.session);
      self.restartButton.hidden = false;
      self.connect();
      return self.session;
    });
  };

  /** Forgets the session and everything shown for it. */
  Webchat.prototype.dropSession = function () {
    storageClear(this.storageKey);
    this.session = null;
    this.closeSocket();
    this.clearReconnect();
    this.reconnectAttempts = 0;
    this.everConnected = false;
    this.dropAnnounced = false;
    this.hideConnection();
    this.syncedId = 0;
    this.messages.clear();
    this.pending = [];
    this.payloadTitles.clear();
    removeChildren(this.list);
    this.restartButton.hidden = true;
    this.updateEmptyState();
  };

  /** The token was refused: start afresh and tell the citizen. */
  Webchat.prototype.sessionExpired = function (keep) {
    this.dropSession();
    this.addNotice(
      "Your chat session had expired, so a new conversation has been started. " +
        "Earlier messages are no longer shown."
    );
    if (keep) {
      this.pending.push(keep);
      this.insertRecord(keep);
    }
    var self = this;
    return this.ensureSession().catch(function () {
      self.showConnection("Could not start a new conversation. Check your connection and try again.");
    });
  };

  Webchat.prototype.restart = function () {
    if (this.sending) {
      return;
    }
    this.dropSession();
    this.clearError();
    this.addNotice("You started a new conversation.");
    this.input.focus();
  };

  Webchat.prototype.sessionUrl = function (suffix) {
    return this.apiRoot.href + "/" + encodeURIComponent(this.session.sessionId) + suffix;
  };

  /* ---------------------------------------------------------------- network */

  /** fetch() wrapper: resolves {ok, status, data, retryAfter}; rejects on network failure. */
  Webchat.prototype.request = function (method, url, body, token, timeoutMs) {
    var headers = { Accept: "application/json" };
    if (body !== null && body !== undefined) {
      headers["Content-Type"] = "application/json";
    }
    if (token) {
      headers.Authorization = "Bearer " + token;
    }
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = controller
      ? window.setTimeout(function () {
          controller.abort();
        }, timeoutMs)
      : null;
    return window
      .fetch(url, {
        method: method,
        headers: headers,
        body: body !== null && body !== undefined ? JSON.stringify(body) : undefined,
        cache: "no-store",
        signal: controller ? controller.signal : undefined
      })
      .then(function (response) {
        return response
          .json()
          .catch(function () {
            return null;
          })
          .then(function (data) {
            return {
              ok: response.ok,
              status: response.status,
              data: data,
              retryAfter: response.headers.get("Retry-After")
            };
          });
      })
      .finally(function () {
        if (timer !== null) {
          window.clearTimeout(timer);
        }
      });
  };

  /**
   * Fetches the transcript after the last id we know we hold. Runs one at a
   * time. `announce` says whether new bot/officer messages are read out.
   */
  Webchat.prototype.catchUp = function (announce) {
    var self = this;
    this.fetchChain = this.fetchChain
      .then(function () {
        return self.fetchTranscript(announce !== false);
      })
      .catch(function () {
        /* reported inside fetchTranscript */
      });
    return this.fetchChain;
  };

  Webchat.prototype.fetchTranscript = function (announce) {
    if (!this.session) {
      return Promise.resolve();
    }
    var self = this;
    var session = this.session;
    var after = this.syncedId;
    var socket = this.wsOpen ? this.ws : null;
    var url = this.sessionUrl("/messages") + "?after=" + encodeURIComponent(String(after));
    return this.request("GET", url, null, session.token, GET_TIMEOUT_MS).then(
      function (res) {
        if (self.session !== session) {
          return;
        }
        if (res.status === 401 || res.status === 403 || res.status === 404) {
          return self.sessionExpired(null);
        }
        if (!res.ok || !res.data || !Array.isArray(res.data.messages)) {
          self.showConnection("Could not load the latest messages. The chat will keep trying.");
          return;
        }
        var highest = after;
        res.data.messages.forEach(function (item) {
          self.receive(item, announce);
          var order = messageOrder(item && item.id);
          if (order !== Number.MAX_SAFE_INTEGER) {
            highest = Math.max(highest, order);
          }
        });
        if (socket && socket === self.ws && self.wsOpen) {
          // Everything after `after` came either from this fetch or the socket.
          highest = Math.max(highest, self.wsMaxId);
          self.wsSynced = true;
        }
        self.syncedId = Math.max(self.syncedId, highest);
        if (self.wsOpen) {
          self.hideConnection();
        }
      },
      function () {
        if (self.session === session) {
          self.showConnection("Could not reach the chat service. The chat will keep trying.");
        }
      }
    );
  };

  /* -------------------------------------------------------------- websocket */

  Webchat.prototype.socketUrl = function () {
    var url = new URL(this.sessionUrl("/ws"));
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("token", this.session.token);
    return url.href;
  };

  Webchat.prototype.connect = function () {
    if (!this.session || this.ws || this.suspended || typeof window.WebSocket !== "function") {
      return;
    }
    var self = this;
    var session = this.session;
    var socket;
    try {
      socket = new window.WebSocket(this.socketUrl());
    } catch (error) {
      this.scheduleReconnect();
      return;
    }
    this.ws = socket;
    this.wsOpen = false;
    this.wsSynced = false;
    this.wsMaxId = 0;

    socket.addEventListener("open", function () {
      if (self.ws !== socket) {
        return;
      }
      self.wsOpen = true;
      self.reconnectAttempts = 0;
      self.hideConnection();
      if (self.dropAnnounced) {
        self.announce("Chat reconnected.");
        self.dropAnnounced = false;
      }
      self.everConnected = true;
      // Fill the gap between the last message we hold and the socket opening.
      self.catchUp(true);
    });

    socket.addEventListener("message", function (event) {
      if (self.ws !== socket || self.session !== session) {
        return;
      }
      var data;
      try {
        data = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (!data || data.type !== "message" || !data.message) {
        return;
      }
      self.receive(data.message, true);
      var order = messageOrder(data.message.id);
      if (order !== Number.MAX_SAFE_INTEGER) {
        if (self.wsSynced) {
          self.syncedId = Math.max(self.syncedId, order);
        } else {
          self.wsMaxId = Math.max(self.wsMaxId, order);
        }
      }
    });

    socket.addEventListener("close", function () {
      if (self.ws !== socket) {
        return;
      }
      var wasOpen = self.wsOpen;
      self.ws = null;
      self.wsOpen = false;
      self.wsSynced = false;
      if (self.suspended || self.session !== session) {
        return;
      }
      if (wasOpen && !self.dropAnnounced) {
        self.announce("Chat connection lost. Trying to reconnect.");
        self.dropAnnounced = true;
      }
      self.scheduleReconnect();
    });
  };

  Webchat.prototype.closeSocket = function () {
    var socket = this.ws;
    this.ws = null;
    this.wsOpen = false;
    this.wsSynced = false;
    if (socket) {
      try {
        socket.close(1000, "closing");
      } catch (error) {
        /* already closed */
      }
    }
  };

  Webchat.prototype.clearReconnect = function () {
    if (this.reconnectTimer !== null) {
      window.clearTimeout(this.reconnectTimer);
      this.reconnectTimer = null;
    }
  };

  /** Exponential backoff with jitter: about 1s, 2s, 4s ... up to 30s. */
  Webchat.prototype.scheduleReconnect = function () {
    if (!this.session || this.reconnectTimer !== null) {
      return;
    }
    var ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * Math.pow(2, this.reconnectAttempts));
    var delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this.reconnectAttempts += 1;
    if (this.everConnected || this.reconnectAttempts > 1) {
      this.showConnection("Reconnecting to the chat\u2026 Your messages so far are kept.");
    }
    var self = this;
    this.reconnectTimer = window.setTimeout(function () {
      self.reconnectTimer = null;
      self.reconnectAfterCheck();
    }, delay);
  };

  /**
   * Before reopening the socket, fetch what we missed. This also finds out
   * whether the token has expired (the socket handshake cannot tell us).
   */
  Webchat.prototype.reconnectAfterCheck = function () {
    var self = this;
    this.catchUp(true).then(function () {
      if (self.session && !self.ws) {
        self.connect();
      }
    });
  };

  Webchat.prototype.reconnectNow = function () {
    if (!this.session || this.ws || this.suspended) {
      return;
    }
    this.clearReconnect();
    this.reconnectAfterCheck();
  };

  /* ---------------------------------------------------------------- sending */

  Webchat.prototype.submitTyped = function () {
    if (this.sending) {
      return;
    }
    var text = this.input.value.trim();
    var problem = this.validate(text);
    if (problem) {
      this.showError(problem);
      this.input.focus();
      return;
    }
    this.clearError();
    this.input.value = "";
    this.updateCount();
    this.input.focus();
    this.send(text, text, true);
  };

  Webchat.prototype.submitButton = function (button) {
    if (this.sending) {
      return;
    }
    this.clearError();
    this.input.focus();
    this.send(button.payload, button.title, false);
  };

  Webchat.prototype.validate = function (text) {
    if (!text) {
      return "Enter a message";
    }
    if (codePointLength(text) > this.maxLength) {
      return "Your message must be " + formatNumber(this.maxLength) + " characters or fewer";
    }
    return null;
  };

  Webchat.prototype.send = function (text, shown, typed) {
    var record = {
      id: null,
      text: text,
      shown: shown,
      typed: typed,
      clientMessageId: newClientMessageId(),
      order: Number.POSITIVE_INFINITY,
      sender: "citizen",
      el: null
    };
    this.renderCitizenPending(record);
    this.pending.push(record);
    this.insertRecord(record);
    this.scrollToEnd(true);
    return this.deliver(record, false);
  };

  Webchat.prototype.deliver = function (record, isRetry) {
    var self = this;
    this.setSending(true);
    this.setRecordState(record, "sending");

    function post() {
      return self.request(
        "POST",
        self.sessionUrl("/messages"),
        record.typed
          ? { text: record.text, client_message_id: record.clientMessageId }
          : // A pressed button: its title is what the citizen (and an officer
            // reading the transcript) sees; the payload is what the bot acts on.
            { text: record.shown, payload: record.text, client_message_id: record.clientMessageId },
        self.session.token,
        POST_TIMEOUT_MS
      );
    }

    return this.ensureSession()
      .then(post)
      .then(function (res) {
        if (res.status === 401 || res.status === 403 || res.status === 404) {
          return self.sessionExpired(record).then(function () {
            if (!self.session) {
              throw new Error("no session");
            }
            return post();
          });
        }
        return res;
      })
      .then(function (res) {
        if (res.ok) {
          self.delivered(record, res.data && Array.isArray(res.data.replies) ? res.data.replies : []);
        } else if (res.status === 422 || res.status === 413 || res.status === 429) {
          // Refused before it was stored: nothing to retry in place.
          self.rejected(record, res);
        } else {
          self.failed(record, "Your message was not sent because something went wrong.");
        }
      })
      .catch(function (error) {
        var res = error && error.response;
        if (res && (res.status === 429 || res.status === 413 || res.status === 422)) {
          self.rejected(record, res); // starting the session was refused
          return;
        }
        self.failed(
          record,
          error && error.status
            ? "Your message was not sent because something went wrong."
            : "Your message was not sent. Check your connection."
        );
      })
      .finally(function () {
        self.setSending(false);
        if (isRetry) {
          self.input.focus();
        }
      });
  };

  Webchat.prototype.delivered = function (record, replies) {
    if (record.id === null && replies.length > 0) {
      // Until the server's copy arrives, keep it just before its replies.
      var first = Math.min.apply(
        null,
        replies.map(function (reply) {
          return messageOrder(reply && reply.id);
        })
      );
      if (first !== Number.MAX_SAFE_INTEGER) {
        record.order = first - 0.5;
        this.insertRecord(record);
      }
    }
    this.setRecordState(record, "sent");
    var self = this;
    replies.forEach(function (reply) {
      self.receive(reply, true);
    });
  };

  /** What to tell the citizen when the service refused a message (not stored). */
  Webchat.prototype.refusal = function (record, res) {
    if (res.status === 429) {
      var seconds = parseInt(res.retryAfter || "", 10);
      var wait =
        seconds > 0 && seconds <= 120
          ? "Wait " + seconds + (seconds === 1 ? " second" : " seconds")
          : "Wait a minute";
      return "You have sent too many messages in a short time. " + wait + ", then try again";
    }
    if (res.status === 413) {
      return "Your message is too long. Make it shorter, then try again";
    }
    var problem = this.validate(record.text);
    if (problem) {
      return problem;
    }
    var detail = res.data && res.data.detail;
    return typeof detail === "string" && detail.length < 200
      ? detail.replace(/\.$/, "")
      : "Your message could not be sent. Check it and try again";
  };

  Webchat.prototype.rejected = function (record, res) {
    this.removePending(record);
    if (record.typed && !this.input.value) {
      this.input.value = record.text;
      this.updateCount();
    }
    this.showError(this.refusal(record, res));
    this.input.focus();
  };

  Webchat.prototype.failed = function (record, message) {
    if (record.id !== null) {
      // The server's copy arrived after all: it was sent.
      this.setRecordState(record, "sent");
      return;
    }
    record.failure = message;
    this.setRecordState(record, "failed");
    this.announce("Error: " + message + " Use the Try again button to send it again.", true);
  };

  Webchat.prototype.setSending = function (sending) {
    this.sending = sending;
    this.sendButton.disabled = sending;
    this.sendButton.setAttribute("aria-disabled", sending ? "true" : "false");
    this.sendButton.textContent = sending ? "Sending\u2026" : "Send";
    this.restartButton.disabled = sending;
    var buttons = this.list.querySelectorAll("button");
    for (var i = 0; i < buttons.length; i += 1) {
      buttons[i].disabled = sending;
    }
  };

  /* ------------------------------------------------------- receiving/render */

  /** Adds a server message unless we already show it. */
  Webchat.prototype.receive = function (item, announce) {
    if (!item || item.id === undefined || item.id === null || typeof item.text !== "string") {
      return;
    }
    var key = String(item.id);
    if (this.messages.has(key)) {
      return;
    }
    var sender = SENDER_LABELS[item.sender] && item.sender !== "notice" ? item.sender : "bot";

    if (sender === "citizen") {
      var match = this.takePending(item.text);
      if (match) {
        match.id = key;
        match.order = messageOrder(item.id);
        match.createdAt = parseTimestamp(item.created_at);
        this.messages.set(key, match);
        this.setRecordState(match, "sent");
        this.setRecordTime(match);
        this.insertRecord(match);
        return;
      }
    }

    var record = {
      id: key,
      order: messageOrder(item.id),
      sender: sender,
      text: item.text,
      shown: sender === "citizen" ? this.payloadTitles.get(item.text.trim()) || item.text : item.text,
      html: sender !== "citizen" && typeof item.html === "string" ? item.html : null,
      urgent: item.urgent === true,
      handoff: item.handoff === true,
      topic: typeof item.topic === "string" ? item.topic : null,
      country: typeof item.country === "string" ? item.country : null,
      buttons: Array.isArray(item.buttons) ? item.buttons.filter(validButton) : [],
      createdAt: parseTimestamp(item.created_at),
      el: null
    };
    var self = this;
    record.buttons.forEach(function (button) {
      self.payloadTitles.set(button.payload.trim(), button.title);
    });
    this.renderServerMessage(record);
    this.messages.set(key, record);
    var nearEnd = this.isNearEnd();
    this.insertRecord(record);
    this.scrollToEnd(nearEnd);
    if (announce && sender !== "citizen") {
      this.announceMessage(record);
    }
  };

  function validButton(button) {
    return (
      button &&
      typeof button.title === "string" &&
      typeof button.payload === "string" &&
      button.title.trim() !== "" &&
      button.payload.trim() !== ""
    );
  }

  Webchat.prototype.takePending = function (text) {
    var wanted = text.trim();
    for (var i = 0; i < this.pending.length; i += 1) {
      // The server stores what was sent as text: a typed message, or a
      // pressed button's title (its payload travels separately).
      var sent = this.pending[i].typed ? this.pending[i].text : this.pending[i].shown;
      if (sent.trim() === wanted || this.pending[i].text.trim() === wanted) {
        return this.pending.splice(i, 1)[0];
      }
    }
    return null;
  };

  Webchat.prototype.removePending = function (record) {
    var index = this.pending.indexOf(record);
    if (index !== -1) {
      this.pending.splice(index, 1);
    }
    if (record.el && record.el.parentNode) {
      record.el.parentNode.removeChild(record.el);
    }
    this.updateEmptyState();
  };

  Webchat.prototype.messageShell = function (record, label) {
    var item = el("li", {
      className: "webchat__message webchat__message--" + record.sender
    });
    var meta = el("p", { className: "webchat__meta" }, [
      el("span", { className: "webchat__sender", text: label })
    ]);
    record.timeEl = el("time", { className: "webchat__time" });
    meta.appendChild(document.createTextNode(" "));
    meta.appendChild(record.timeEl);
    item.appendChild(meta);
    record.el = item;
    this.setRecordTime(record);
    return item;
  };

  Webchat.prototype.setRecordTime = function (record) {
    if (!record.timeEl || !record.createdAt) {
      return;
    }
    record.timeEl.setAttribute("datetime", record.createdAt.toISOString());
    record.timeEl.textContent = formatTime(record.createdAt);
  };

  Webchat.prototype.renderCitizenPending = function (record) {
    record.createdAt = new Date();
    var item = this.messageShell(record, SENDER_LABELS.citizen);
    item.appendChild(el("p", { className: "webchat__text", text: record.shown }));
    record.stateEl = el("div", { className: "webchat__state" });
    item.appendChild(record.stateEl);
  };

  Webchat.prototype.renderServerMessage = function (record) {
    var item = this.messageShell(record, SENDER_LABELS[record.sender]);
    if (record.topic) {
      item.setAttribute("data-topic", record.topic);
    }
    if (record.country) {
      item.setAttribute("data-country", record.country);
    }
    // Guidance comes with sanitised HTML; rebuild it from the allow-list.
    var rich = record.html ? safeFragment(record.html) : null;
    if (record.urgent) {
      item.classList.add("webchat__message--urgent");
      item.appendChild(
        el("div", { className: "govuk-warning-text webchat__warning" }, [
          el("span", { className: "govuk-warning-text__icon", text: "!", attrs: { "aria-hidden": "true" } }),
          el("strong", { className: "govuk-warning-text__text webchat__text" }, [
            el("span", { className: "govuk-visually-hidden", text: "Urgent: " }),
            document.createTextNode(rich ? "This is urgent." : record.shown)
          ])
        ])
      );
    }
    if (rich) {
      item.classList.add("webchat__message--rich");
      item.appendChild(el("div", { className: "webchat__rich" }, [rich]));
    } else if (!record.urgent) {
      item.appendChild(el("p", { className: "webchat__text", text: record.shown }));
    }
    if (record.handoff) {
      item.classList.add("webchat__message--handoff");
    }
    if (record.buttons.length > 0) {
      var self = this;
      var group = el("div", {
        className: "govuk-button-group webchat__buttons",
        attrs: { role: "group", "aria-label": "Suggested replies" }
      });
      record.buttons.forEach(function (button) {
        var node = el("button", {
          className: "govuk-button govuk-button--secondary webchat__reply-button",
          text: button.title,
          attrs: { type: "button" }
        });
        node.disabled = self.sending;
        node.addEventListener("click", function () {
          self.submitButton(button);
        });
        group.appendChild(node);
      });
      item.appendChild(group);
    }
  };

  Webchat.prototype.setRecordState = function (record, state) {
    if (!record.stateEl) {
      return;
    }
    var self = this;
    removeChildren(record.stateEl);
    record.el.classList.toggle("webchat__message--sending", state === "sending");
    record.el.classList.toggle("webchat__message--failed", state === "failed");
    if (state === "sending") {
      record.stateEl.appendChild(el("p", { className: "webchat__status-text", text: "Sending\u2026" }));
    } else if (state === "failed") {
      record.stateEl.appendChild(
        el("p", { className: "govuk-error-message webchat__status-text" }, [
          el("span", { className: "govuk-visually-hidden", text: "Error: " }),
          record.failure || "Your message was not sent."
        ])
      );
      record.stateEl.appendChild(
        el("p", {
          className: "govuk-body-s webchat__status-text",
          text: "If you need help urgently, call " + this.phone + "."
        })
      );
      var retry = el("button", {
        className: "govuk-button govuk-button--secondary webchat__retry",
        text: "Try again",
        attrs: { type: "button" }
      });
      retry.addEventListener("click", function () {
        if (!self.sending) {
          self.input.focus();
          self.deliver(record, true);
        }
      });
      record.stateEl.appendChild(retry);
    }
  };

  Webchat.prototype.addNotice = function (text) {
    var record = {
      id: null,
      order: -1,
      sender: "notice",
      createdAt: new Date(),
      el: null
    };
    var item = this.messageShell(record, SENDER_LABELS.notice);
    item.appendChild(el("p", { className: "webchat__text", text: text }));
    this.insertRecord(record);
    this.announce(text);
  };

  /** Puts a record's element in id order (unsent messages stay last). */
  Webchat.prototype.insertRecord = function (record) {
    var node = record.el;
    node.setAttribute("data-order", String(record.order));
    if (record.id !== null && record.id !== undefined) {
      node.setAttribute("data-id", record.id);
    }
    var before = null;
    var children = this.list.children;
    for (var i = 0; i < children.length; i += 1) {
      var child = children[i];
      if (child !== node && Number(child.getAttribute("data-order")) > record.order) {
        before = child;
        break;
      }
    }
    if (node.parentNode !== this.list || node.nextSibling !== before) {
      this.list.insertBefore(node, before);
    }
    this.updateEmptyState();
  };

  Webchat.prototype.updateEmptyState = function () {
    this.emptyState.hidden = this.list.children.length > 0;
  };

  Webchat.prototype.isNearEnd = function () {
    var log = this.log;
    return log.scrollHeight - log.scrollTop - log.clientHeight < SCROLL_STICK_PX;
  };

  Webchat.prototype.scrollToEnd = function (force) {
    if (force) {
      this.log.scrollTop = this.log.scrollHeight;
    }
  };

  /* ------------------------------------------------------ announcements/UI */

  /** Reads `text` out: politely, or at once when `assertive` (urgent replies, errors). */
  Webchat.prototype.announce = function (text, assertive) {
    var region = assertive ? this.alertRegion : this.announcer;
    region.appendChild(el("p", { text: text }));
    while (region.children.length > ANNOUNCEMENTS_KEPT) {
      region.removeChild(region.firstChild);
    }
  };

  Webchat.prototype.announceMessage = function (record) {
    var label = SENDER_LABELS[record.sender];
    var text = record.urgent ? "Urgent message from " + label.toLowerCase() + ": " : label + ": ";
    text += record.text;
    if (record.buttons.length > 0) {
      text +=
        " Suggested replies: " +
        record.buttons
          .map(function (button) {
            return button.title;
          })
          .join(", ") +
        ".";
    }
    this.announce(text, record.urgent);
  };

  Webchat.prototype.showConnection = function (text) {
    this.connection.textContent = text;
    this.connection.hidden = false;
  };

  Webchat.prototype.hideConnection = function () {
    this.connection.hidden = true;
    this.connection.textContent = "";
  };

  Webchat.prototype.showError = function (message) {
    removeChildren(this.errorMessage);
    this.errorMessage.appendChild(el("span", { className: "govuk-visually-hidden", text: "Error: " }));
    this.errorMessage.appendChild(document.createTextNode(message));
    this.errorMessage.hidden = false;
    this.formGroup.classList.add("govuk-form-group--error");
    this.input.classList.add("govuk-textarea--error");
    this.input.setAttribute("aria-invalid", "true");
    this.input.setAttribute(
      "aria-describedby",
      this.ids.hint + " " + this.ids.error + " " + this.ids.count
    );
    removeChildren(this.summaryLink);
    this.summaryLink.appendChild(document.createTextNode(message));
    this.summary.hidden = false;
    this.announce("Error: " + message, true);
  };

  Webchat.prototype.clearError = function () {
    if (this.errorMessage.hidden) {
      return;
    }
    this.errorMessage.hidden = true;
    removeChildren(this.errorMessage);
    this.summary.hidden = true;
    removeChildren(this.summaryLink);
    this.formGroup.classList.remove("govuk-form-group--error");
    this.input.classList.remove("govuk-textarea--error");
    this.input.removeAttribute("aria-invalid");
    this.input.setAttribute("aria-describedby", this.ids.hint + " " + this.ids.count);
  };

  Webchat.prototype.updateCount = function () {
    var length = codePointLength(this.input.value);
    var remaining = this.maxLength - length;
    var over = remaining < 0;
    if (length < this.maxLength * 0.75) {
      this.count.textContent = "You can enter up to " + formatNumber(this.maxLength) + " characters";
    } else if (over) {
      var extra = -remaining;
      this.count.textContent =
        "You have " + formatNumber(extra) + (extra === 1 ? " character" : " characters") + " too many";
    } else {
      this.count.textContent =
        "You have " + formatNumber(remaining) + (remaining === 1 ? " character" : " characters") + " remaining";
    }
    this.count.classList.toggle("govuk-error-message", over);
    this.count.classList.toggle("govuk-hint", !over);
    this.input.classList.toggle("govuk-textarea--error", over || !this.errorMessage.hidden);
    if (!over) {
      this.clearErrorIfFixed();
    }
  };

  Webchat.prototype.clearErrorIfFixed = function () {
    if (!this.errorMessage.hidden && this.input.value.trim() !== "") {
      this.clearError();
    }
  };

  /* ------------------------------------------------------------------ start */

  function initAll(scope) {
    var root = scope || document;
    var containers = root.querySelectorAll("[data-consular-webchat]");
    var widgets = [];
    for (var i = 0; i < containers.length; i += 1) {
      var container = containers[i];
      if (container.getAttribute("data-consular-webchat-ready") === "true") {
        continue;
      }
      container.setAttribute("data-consular-webchat-ready", "true");
      widgets.push(new Webchat(container));
    }
    return widgets;
  }

  window.ConsularWebchat = { initAll: initAll };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      initAll();
    });
  } else {
    initAll();
  }
})();
