// Duty officers' console: live queue and conversation updates, urgent alerts.
// The pages work without this script; it only adds what a live view needs.
// Citizens' words are only ever inserted with textContent, never as HTML.
(function () {
  "use strict";

  var body = document.body;
  var base = body.getAttribute("data-console-base") || "/console";
  var page = body.getAttribute("data-page");
  var conversationId = body.getAttribute("data-conversation-id");
  var liveStatus = document.getElementById("live-status");
  var alertBox = document.getElementById("urgent-alert");
  var alertText = document.getElementById("urgent-alert-text");
  var setup = document.getElementById("alerts-setup");
  var setupStatus = document.getElementById("alerts-status");
  var enableButton = document.getElementById("alerts-enable");
  var audio = null;
  var socket = null;
  var retry = 1000;
  var lastActivity = 0;

  function say(text) {
    if (liveStatus) { liveStatus.textContent = text; }
  }

  // -- alerts: a browser notification, a sound, and always an in-page banner --

  function notificationsAllowed() {
    return "Notification" in window && Notification.permission === "granted";
  }

  function showSetup() {
    if (!setup) { return; }
    if (!("Notification" in window)) {
      setupStatus.textContent = "This browser cannot show notifications. Urgent conversations will be shown at the top of this page, with a sound once you turn sound on.";
    } else if (Notification.permission === "denied") {
      setupStatus.textContent = "Notifications are blocked for this site. Urgent conversations will be shown at the top of this page, with a sound once you turn sound on.";
    }
    setup.hidden = notificationsAllowed() && audio !== null;
  }

  if (enableButton) {
    enableButton.addEventListener("click", function () {
      var Context = window.AudioContext || window.webkitAudioContext;
      if (Context && audio === null) { audio = new Context(); }
      if (audio) { audio.resume(); }
      if ("Notification" in window && Notification.permission === "default") {
        Notification.requestPermission().then(showSetup);
      } else {
        showSetup();
      }
      say("Alerts are on.");
    });
  }

  function beep() {
    if (!audio) { return; }
    var now = audio.currentTime;
    [0, 0.35].forEach(function (offset) {
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.25, now + offset);
      gain.gain.exponentialRampToValueAtTime(0.001, now + offset + 0.3);
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start(now + offset);
      osc.stop(now + offset + 0.3);
    });
  }

  function urgentAlert() {
    var text = "A new urgent conversation has joined the queue.";
    if (alertBox) {
      alertText.textContent = text;
      alertBox.hidden = false;
    }
    beep();
    if (notificationsAllowed()) {
      var note = new Notification("Urgent: consular duty console", { body: text, tag: "urgent-queue" });
      note.onclick = function () { window.focus(); window.location.href = base; };
    }
  }

  // -- the queue --

  function refreshQueue() {
    var holder = document.getElementById("queue-table");
    if (!holder) { return; }
    fetch(base + "/queue", { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.redirected || !response.ok) { throw new Error("signed out"); }
        return response.text();
      })
      .then(function (html) {
        // Rendered (and escaped) by the server from the same template as the page.
        holder.innerHTML = html;
        var rows = holder.querySelectorAll("tbody tr").length;
        say("Queue updated: " + rows + " open conversation" + (rows === 1 ? "" : "s") + ".");
      })
      .catch(function () { say("The queue could not be refreshed. Reload the page."); });
  }

  // -- a conversation --

  function appendMessage(message) {
    var list = document.getElementById("transcript");
    if (!list || list.querySelector('[data-message-id="' + message.id + '"]')) { return; }
    var labels = { citizen: "Citizen", bot: "Assistant", officer: "Officer", system: "System" };
    var item = document.createElement("li");
    item.className = "console-message console-message--" + message.sender;
    item.setAttribute("data-message-id", String(message.id));
    var meta = document.createElement("p");
    meta.className = "govuk-body-s console-message__meta";
    var who = document.createElement("strong");
    who.textContent = labels[message.sender] || message.sender;
    meta.appendChild(who);
    var when = document.createElement("time");
    when.setAttribute("datetime", message.created_at || "");
    when.textContent = " " + new Date(message.created_at || Date.now()).toLocaleString();
    meta.appendChild(when);
    if (message.sender === "officer") {
      var tag = document.createElement("strong");
      tag.className = "govuk-tag console-delivery";
      tag.setAttribute("data-delivery", "");
      meta.appendChild(document.createTextNode(" "));
      meta.appendChild(tag);
    }
    var text = document.createElement("p");
    text.className = "govuk-body console-message__text";
    text.textContent = message.text;
    item.appendChild(meta);
    item.appendChild(text);
    if (message.guidance) { item.appendChild(guidanceSource(message.guidance)); }
    list.appendChild(item);
    say("New message from " + who.textContent.toLowerCase() + ".");
  }

  // Where a guidance answer came from, as the server-rendered page shows it.
  function guidanceSource(source) {
    var line = document.createElement("p");
    line.className = "govuk-body-s console-message__source";
    line.appendChild(document.createTextNode(source.title
      ? "From the article \u201c" + source.title + "\u201d, revision " + source.number + ". "
      : "From guidance revision " + source.revision_id + ", no longer stored. "));
    if (source.review_by) {
      line.appendChild(document.createTextNode("Review by "));
      var date = document.createElement("time");
      date.setAttribute("datetime", source.review_by);
      date.textContent = source.review_by_text;
      line.appendChild(date);
      line.appendChild(document.createTextNode(" "));
    } else {
      line.appendChild(document.createTextNode("No review-by date set. "));
    }
    if (source.overdue) {
      var tag = document.createElement("strong");
      tag.className = "govuk-tag govuk-tag--red";
      tag.textContent = "Past its review-by date";
      line.appendChild(tag);
    }
    return line;
  }

  function setDelivery(messageId, state) {
    var item = document.querySelector('[data-message-id="' + messageId + '"]');
    var tag = item && item.querySelector("[data-delivery]");
    if (!tag) { return; }
    tag.textContent = state;
    tag.className = "govuk-tag console-delivery console-delivery--" + state;
    if (state === "failed" || state === "undeliverable") {
      say("A reply could not be delivered: " + state + ".");
    }
  }

  function conversationChanged(text) {
    var banner = document.getElementById("conversation-changed");
    if (!banner) { return; }
    document.getElementById("conversation-changed-text").textContent = text;
    banner.hidden = false;
  }

  var changes = {
    taken: "has taken over this conversation.",
    transferred: "has transferred this conversation.",
    returned: "has returned this conversation to the assistant.",
    closed: "has closed this conversation."
  };

  // -- the socket --

  function handle(event) {
    if (event.type === "queue") {
      if (event.change === "opened" && event.urgent) { urgentAlert(); }
      if (page === "queue") { refreshQueue(); }
      if (conversationId && event.conversation_id === conversationId && changes[event.change]) {
        conversationChanged((event.by || "An officer") + " " + changes[event.change]);
      }
    } else if (event.type === "note" && conversationId && event.conversation_id === conversationId) {
      conversationChanged("A note has been added.");
    } else if (event.type === "message" && event.message) {
      appendMessage(event.message);
    } else if (event.type === "delivery") {
      setDelivery(event.message_id, event.state);
    } else if (event.type === "signed_out") {
      say("You have been signed out. Sign in again to keep receiving updates.");
    }
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var url = scheme + window.location.host + base + "/ws";
    if (conversationId) { url += "?conversation=" + encodeURIComponent(conversationId); }
    socket = new WebSocket(url);
    socket.onopen = function () {
      retry = 1000;
      say("Live updates are on.");
      if (page === "queue") { refreshQueue(); }
    };
    socket.onmessage = function (message) {
      try { handle(JSON.parse(message.data)); } catch (error) { /* ignore malformed events */ }
    };
    socket.onclose = function (closed) {
      if (closed.code === 4401) {
        say("You have been signed out, so live updates have stopped. Reload the page to sign in again.");
        return;
      }
      say("Live updates paused; reconnecting.");
      window.setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    };
  }

  // Only the officer's own activity keeps the session alive, at most once a minute.
  function activity() {
    var now = Date.now();
    if (now - lastActivity < 60000 || !socket || socket.readyState !== 1) { return; }
    lastActivity = now;
    socket.send(JSON.stringify({ type: "activity" }));
  }
  ["keydown", "click", "mousemove"].forEach(function (name) {
    document.addEventListener(name, activity, { passive: true });
  });

  // A ready-made reply fills the message box to adapt before sending.
  var canned = document.getElementById("canned");
  var replyText = document.getElementById("reply-text");
  if (canned && replyText) {
    canned.addEventListener("change", function () {
      var option = canned.options[canned.selectedIndex];
      var text = option ? option.getAttribute("data-text") : "";
      if (text) { replyText.value = text; replyText.focus(); }
    });
  }

  // The waiting times in the queue move on even when nothing else happens.
  if (page === "queue") { window.setInterval(refreshQueue, 30000); }

  showSetup();
  if ("WebSocket" in window) { connect(); }
}());
