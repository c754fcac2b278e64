// The agent console, live.
//
// The agent socket (/ws/agent/) carries presence, offers and assignments. On
// every (re)connect the server sends an agent.snapshot, and the snapshot
// *replaces* what the page shows: offers, active tickets, presence. The page
// also asks for one ({"type": "resync"}) after a reconnect and whenever the
// tab comes back into view, since a tab in the background may have been
// throttled or frozen by the browser. That is the whole resync story:
// whatever a dropped connection or a lost Redis message missed, the next
// snapshot corrects, without reloading the page.
//
// Each offer shown is acknowledged once ({"type": "offer.seen"}): only offers
// seen and then left to expire count toward setting the agent away, so an
// offer whose push was lost on the way is never held against them.
//
// The open conversation uses the ticket socket through HumanlineConversation,
// which resumes from the last message seen (?since=).
//
// Its words come from Django's JavaScript catalog (/i18n/js/), loaded before it.
(function () {
  "use strict";
  const gettext = window.gettext || ((text) => text);
  const interpolate = window.interpolate || function (format, args, named) {
    let i = 0;
    return named
      ? format.replace(/%\((\w+)\)s/g, (match, key) => args[key])
      : format.replace(/%s/g, () => args[i++]);
  };
  const H = window.Humanline;
  const root = document.getElementById("console");
  if (!root || !H || !("WebSocket" in window)) return;

  const offersBox = document.getElementById("offers");
  const offersEmpty = document.getElementById("offers-empty");
  const activeList = document.getElementById("active-tickets");
  const activeEmpty = document.getElementById("active-empty");
  const activeCount = document.getElementById("active-count");
  const live = document.getElementById("console-live");
  const liveText = document.getElementById("console-live-text");
  const announce = document.getElementById("console-announce");
  const baseTitle = document.title;
  const offers = new Map(); // offer id → {offer, node, answering}
  const acknowledged = new Set(); // offer ids sent as offer.seen
  const reasonsData = document.getElementById("decline-reasons");
  const declineReasons = reasonsData ? JSON.parse(reasonsData.textContent) : [];
  let capacity = Number((activeCount.textContent.split("/")[1] || "").trim()) || 2;
  let clockOffset = 0; // server time − local time, from the snapshot
  let socket = null;
  let attempts = 0;
  let opened = 0; // sockets opened since the page loaded
  let retry = null; // the scheduled reconnect, if any
  let pinger = null;
  let conversation = null;
  let audio = null;

  // --- small pieces ---------------------------------------------------------

  function say(text) {
    announce.textContent = "";
    window.setTimeout(function () { announce.textContent = text; }, 50);
  }

  function setLive(state, text) {
    live.dataset.state = state;
    liveText.textContent = text;
    root.dataset.live = state === "live" ? "true" : "false";
  }

  function send(message) {
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(message));
    return true;
  }

  function beep() {
    root.dataset.beeps = String(Number(root.dataset.beeps || 0) + 1);
    try {
      const Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return;
      audio = audio || new Context();
      if (audio.state === "suspended") audio.resume();
      const start = audio.currentTime;
      [880, 1320].forEach(function (frequency, i) {
        const tone = audio.createOscillator();
        const gain = audio.createGain();
        const t = start + i * 0.16;
        tone.type = "sine";
        tone.frequency.value = frequency;
        gain.gain.setValueAtTime(0.0001, t);
        gain.gain.exponentialRampToValueAtTime(0.18, t + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.14);
        tone.connect(gain).connect(audio.destination);
        tone.start(t);
        tone.stop(t + 0.16);
      });
    } catch (e) {
      // No sound is fine: the title and the card still tell.
    }
  }

  function updateTitle() {
    const open = [...offers.values()].filter((o) => !o.ended).length;
    document.title = open ? "(" + open + ") New offer · Humanline" : baseTitle;
    offersEmpty.hidden = offers.size > 0;
  }

  // --- presence ------------------------------------------------------------

  const presenceLabels = { online: gettext("Online"), away: gettext("Away"), offline: gettext("Offline") };

  function showPresence(presence, note) {
    root.dataset.presence = presence;
    const badge = document.getElementById("presence-badge");
    if (badge) {
      badge.textContent = presenceLabels[presence] || presence;
      badge.className = "badge " + presence;
    }
    document.querySelectorAll("#presence .seg").forEach(function (button) {
      const value = button.closest("form").querySelector("[name=status]").value;
      button.setAttribute("aria-pressed", value === presence ? "true" : "false");
    });
    offersEmpty.textContent = presence === "online"
      ? gettext("You're online. New tickets will pop up here.")
      : gettext("Go online to receive offers.");
    if (note) {
      const box = document.getElementById("presence");
      let p = box.querySelector(".presence-error");
      if (!p) {
        p = H.el("p", { class: "presence-error error", role: "alert" });
        box.append(p);
      }
      p.textContent = note;
    }
  }

  document.body.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "presence") {
      const badge = document.getElementById("presence-badge");
      if (badge) root.dataset.presence = badge.className.replace("badge ", "");
      showPresence(root.dataset.presence);
    }
  });

  // --- offers ----------------------------------------------------------------

  function hasBonus(offer) {
    return Boolean(offer.waiting_bonus && Number(offer.waiting_bonus.amount) > 0);
  }

  // Decline opens this choice; the reasons and what each does come from the page.
  function declineChoice(offer) {
    const id = "offer-" + offer.id + "-reasons";
    return H.el("div", {
      class: "decline-choice", id: id, role: "group", "aria-labelledby": id + "-title", hidden: true,
    },
    H.el("p", { class: "legend", id: id + "-title" }, gettext("Decline because…")),
    declineReasons.map(function (reason) {
      const hint = "offer-" + offer.id + "-" + reason.value;
      return H.el("div", { class: "reason" },
        H.el("button", {
          type: "button", class: "secondary", "data-answer": "decline", "data-reason": reason.value,
          "aria-describedby": hint,
        }, reason.label),
        " ",
        H.el("span", { class: "help", id: hint }, reason.hint));
    }));
  }

  function offerNode(offer) {
    const t = offer.ticket;
    const meta = [t.category, String(t.language || "").toUpperCase()];
    const choices = declineReasons.length > 0;
    const node = H.el("article", {
      class: "offer arriving",
      "data-offer": offer.id,
      "data-testid": "offer",
      "aria-labelledby": "offer-" + offer.id + "-title",
    },
    H.el("header", { class: "offer-head" },
      H.el("span", { class: "offer-tag" }, gettext("New offer")),
      H.el("span", { class: "countdown", role: "timer", "aria-label": gettext("Seconds left to answer") },
        H.el("span", { class: "countdown-num", "data-testid": "countdown" }, offer.window_seconds), " s")),
    H.el("p", { class: "offer-pay" },
      H.el("span", { class: "amount", "data-testid": "offer-pay" }, H.money(offer.pay)),
      offer.surge_multiplier && offer.surge_multiplier !== "1.00"
        ? H.el("span", { class: "surge-tag" }, interpolate(gettext("×%s surge"), [offer.surge_multiplier])) : null,
      hasBonus(offer)
        ? H.el("span", { class: "bonus-tag", "data-testid": "waiting-bonus" },
          interpolate(gettext("+%s waiting bonus"), [H.money(offer.waiting_bonus)])) : null),
    H.el("h3", { id: "offer-" + offer.id + "-title" }, t.subject),
    H.el("p", { class: "offer-summary" }, t.summary),
    H.el("p", { class: "offer-meta" }, meta.join(" · "),
      t.priority && t.priority !== "normal"
        ? [" · ", H.el("span", { class: "badge priority-" + t.priority }, t.priority)] : null,
      t.handoff ? " · " + gettext("bot hand-off") : null,
      t.waiting_seconds ? " · " + interpolate(gettext("waiting %s"), [H.duration(t.waiting_seconds)]) : null),
    H.el("div", { class: "offer-bar", "aria-hidden": "true" }, H.el("span")),
    H.el("div", { class: "offer-actions" },
      H.el("button", { type: "button", class: "accept", "data-answer": "accept" }, gettext("Accept")),
      choices
        ? H.el("button", {
          type: "button", class: "secondary", "data-decline": "",
          "aria-expanded": "false", "aria-controls": "offer-" + offer.id + "-reasons",
        }, gettext("Decline"))
        : H.el("button", { type: "button", class: "secondary", "data-answer": "decline" }, gettext("Decline"))),
    choices ? declineChoice(offer) : null,
    H.el("p", { class: "offer-error error", role: "alert", hidden: true }));
    return node;
  }

  // offer.seen, once per offer shown. A snapshot that still has an offer unseen
  // means the acknowledgement was lost with a connection: it is sent again
  // (the server records the first one only).
  function acknowledge(offer, { unlessSeen = false } = {}) {
    if (acknowledged.has(offer.id) && !(unlessSeen && !offer.seen_at)) return;
    if (send({ type: "offer.seen", offer_id: offer.id })) acknowledged.add(offer.id);
  }

  function addOffer(offer, { quiet } = {}) {
    if (offers.has(offer.id)) return;
    const node = offerNode(offer);
    offersBox.prepend(node);
    offers.set(offer.id, { offer: offer, node: node, ended: false });
    tick();
    updateTitle();
    if (!quiet) {
      beep();
      const pays = hasBonus(offer)
        ? interpolate(gettext("New offer: %(subject)s. Pays %(pay)s, with a %(bonus)s waiting bonus."), {
          subject: offer.ticket.subject, pay: H.money(offer.pay), bonus: H.money(offer.waiting_bonus),
        }, true)
        : interpolate(gettext("New offer: %(subject)s. Pays %(pay)s."), {
          subject: offer.ticket.subject, pay: H.money(offer.pay),
        }, true);
      say(pays + " " + interpolate(gettext("%s seconds to answer."), [offer.window_seconds]));
    }
    window.setTimeout(function () { node.classList.remove("arriving"); }, 600);
  }

  function endOffer(id, text, { keep = 2500 } = {}) {
    const entry = offers.get(id);
    if (!entry || entry.ended) return;
    entry.ended = true;
    entry.node.classList.add("ended");
    entry.node.querySelectorAll("button").forEach((b) => (b.disabled = true));
    entry.node.querySelector(".offer-tag").textContent = text;
    updateTitle();
    window.setTimeout(function () { removeOffer(id); }, keep);
  }

  function removeOffer(id) {
    const entry = offers.get(id);
    if (!entry) return;
    entry.node.remove();
    offers.delete(id);
    updateTitle();
  }

  function offerError(id, message) {
    const entry = offers.get(id);
    if (!entry) return;
    entry.answering = false;
    const box = entry.node.querySelector(".offer-error");
    box.textContent = message;
    box.hidden = false;
    endOffer(id, gettext("No longer available"), { keep: 4000 });
  }

  function tick() {
    const now = Date.now() + clockOffset;
    offers.forEach(function (entry, id) {
      if (entry.ended) return;
      const expires = Date.parse(entry.offer.expires_at);
      const windowMs = (entry.offer.window_seconds || 15) * 1000;
      // Never more than the window: the clock offset, read from a snapshot that
      // took a while to arrive, can put "now" a little early.
      const left = Math.min(windowMs, Math.max(0, expires - now));
      entry.node.querySelector(".countdown-num").textContent = Math.ceil(left / 1000);
      entry.node.querySelector(".offer-bar span").style.width = (100 * left / windowMs) + "%";
      entry.node.classList.toggle("urgent", left <= 5000);
      if (left <= 0 && !entry.answering) endOffer(id, gettext("Time's up"));
    });
  }
  window.setInterval(tick, 200);

  function answerOverHttp(id, answer, reason) {
    return fetch("/api/v1/offers/" + id + "/" + answer + "/", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": H.csrf(), Accept: "application/json", "Content-Type": "application/json" },
      body: JSON.stringify(answer === "decline" ? { reason: reason || "" } : {}),
    }).then(function (response) {
      return response.json().then(function (body) {
        if (response.ok) answered(id, body.status);
        else offerError(id, (body.error && body.error.message) || gettext("Could not answer the offer."));
      });
    }).catch(function () {
      offerError(id, gettext("Could not reach Humanline. Check your connection."));
    });
  }

  function answer(id, what, reason) {
    const entry = offers.get(id);
    if (!entry || entry.ended || entry.answering) return;
    entry.answering = true;
    entry.node.querySelectorAll("button").forEach((b) => (b.disabled = true));
    entry.node.querySelector(".offer-tag").textContent = what === "accept" ? gettext("Accepting…") : gettext("Declining…");
    const message = { type: "offer." + what, offer_id: id };
    if (what === "decline") message.reason = reason || "";
    // Offers answered while the socket is down go over HTTP.
    if (!send(message)) answerOverHttp(id, what, reason);
  }

  function toggleDecline(node, open) {
    const toggle = node.querySelector("[data-decline]");
    const choice = node.querySelector(".decline-choice");
    if (!toggle || !choice) return;
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    choice.hidden = !open;
    if (open) choice.querySelector("button").focus();
    else toggle.focus();
  }

  function answered(id, status) {
    if (status === "accepted") {
      endOffer(id, gettext("Accepted"), { keep: 800 });
    } else if (status === "declined") {
      endOffer(id, gettext("Declined"), { keep: 800 });
      say(gettext("Offer declined."));
    }
  }

  // Only live cards are answered here: a server-rendered card (before the first
  // snapshot replaces it) keeps its plain forms.
  function liveCard(target) {
    const node = target.closest("[data-offer]");
    const entry = node && offers.get(Number(node.dataset.offer));
    return entry && entry.node === node ? node : null;
  }

  offersBox.addEventListener("click", function (click) {
    const button = click.target.closest("button[data-answer], button[data-decline]");
    const node = button && liveCard(button);
    if (!node) return;
    click.preventDefault();
    if (button.hasAttribute("data-decline")) {
      toggleDecline(node, button.getAttribute("aria-expanded") !== "true");
      return;
    }
    answer(Number(node.dataset.offer), button.dataset.answer, button.dataset.reason);
  });

  offersBox.addEventListener("keydown", function (key) {
    if (key.key !== "Escape") return;
    const open = key.target.closest(".decline-choice, [data-decline][aria-expanded=true]");
    const node = open && liveCard(open);
    if (node) toggleDecline(node, false);
  });

  // --- active tickets and the conversation pane ------------------------------

  function ticketItem(t) {
    return H.el("li", {},
      H.el("a", { href: "/agent/?ticket=" + t.id, "data-ticket-link": t.id },
        H.el("strong", {}, t.subject),
        H.el("span", {}, ((t.customer && t.customer.name) || gettext("Customer")) + " · " + t.category)));
  }

  function refreshCount() {
    const n = activeList.children.length;
    activeCount.textContent = n + "/" + capacity;
    activeEmpty.hidden = n > 0;
  }

  function addActive(t) {
    if (activeList.querySelector('[data-ticket-link="' + t.id + '"]')) return;
    activeList.append(ticketItem(t));
    refreshCount();
  }

  function removeActive(id) {
    const link = activeList.querySelector('[data-ticket-link="' + id + '"]');
    if (link) link.closest("li").remove();
    refreshCount();
  }

  function markCurrent(id) {
    document.querySelectorAll("[data-ticket-link]").forEach(function (link) {
      if (Number(link.dataset.ticketLink) === Number(id)) link.setAttribute("aria-current", "true");
      else link.removeAttribute("aria-current");
    });
  }

  function openPane(id, { push = true } = {}) {
    if (!window.htmx) {
      window.location.href = "/agent/?ticket=" + id;
      return;
    }
    window.htmx.ajax("GET", "/agent/tickets/" + id + "/", { target: "#pane", swap: "outerHTML" })
      .then(function () {
        if (push) history.pushState({ ticket: id }, "", "/agent/?ticket=" + id);
      });
  }

  document.addEventListener("click", function (click) {
    const link = click.target.closest("a[data-ticket-link]");
    if (!link || click.metaKey || click.ctrlKey || click.shiftKey) return;
    click.preventDefault();
    openPane(link.dataset.ticketLink);
  });
  window.addEventListener("popstate", function () {
    const id = new URLSearchParams(location.search).get("ticket");
    if (id) openPane(id, { push: false });
  });

  function paneStatus(event) {
    const pane = document.getElementById("pane");
    if (event.status !== "assigned") removeActive(event.ticket_id);
    if (pane && Number(pane.dataset.ticket) === Number(event.ticket_id)) {
      openPane(event.ticket_id, { push: false });
    }
  }

  function attachPane() {
    const pane = document.getElementById("pane");
    if (conversation) {
      conversation.close();
      conversation = null;
    }
    if (!pane || !pane.dataset.ticket || !window.HumanlineConversation) return;
    markCurrent(pane.dataset.ticket);
    if (pane.dataset.status !== "assigned") removeActive(pane.dataset.ticket);
    conversation = window.HumanlineConversation.attach(pane, { onStatus: paneStatus });
  }

  document.body.addEventListener("htmx:afterSettle", function (event) {
    if (document.getElementById("pane") && event.detail.target &&
        (event.detail.target.id === "pane" || event.detail.elt.id === "pane")) {
      attachPane();
    }
  });

  // --- the agent socket ------------------------------------------------------

  function applySnapshot(snapshot) {
    if (snapshot.server_time) clockOffset = Date.parse(snapshot.server_time) - Date.now();
    capacity = snapshot.agent.capacity || capacity;
    showPresence(snapshot.agent.presence);
    const wanted = new Set(snapshot.pending_offers.map((o) => o.id));
    offers.forEach(function (entry, id) { if (!wanted.has(id)) removeOffer(id); });
    // Server-rendered cards (no-JavaScript forms) give way to live ones.
    offersBox.querySelectorAll("[data-offer]").forEach(function (node) {
      if (!offers.has(Number(node.dataset.offer))) node.remove();
    });
    const fresh = snapshot.pending_offers.filter((o) => !offers.has(o.id));
    fresh.forEach((o) => addOffer(o, { quiet: false }));
    snapshot.pending_offers.forEach((o) => acknowledge(o, { unlessSeen: true }));
    activeList.replaceChildren();
    snapshot.assigned_tickets.forEach(addActive);
    refreshCount();
    const pane = document.getElementById("pane");
    if (pane && pane.dataset.ticket) markCurrent(pane.dataset.ticket);
    updateTitle();
  }

  function handle(message) {
    switch (message.type) {
      case "agent.snapshot":
        applySnapshot(message);
        break;
      case "offer.created":
        addOffer(message.offer);
        acknowledge(message.offer);
        // The offer's multiplier is the surge in force when it was made.
        document.getElementById("surge-multiplier").textContent = message.offer.surge_multiplier;
        break;
      case "offer.expired":
        endOffer(message.offer_id, gettext("Expired"));
        break;
      case "offer.withdrawn":
        endOffer(message.offer_id, gettext("Withdrawn"));
        break;
      case "offer.answered":
        answered(message.offer_id, message.status);
        break;
      case "ticket.assigned": {
        const entry = offers.get(message.offer_id);
        if (entry) endOffer(message.offer_id, gettext("Accepted"), { keep: 800 });
        addActive(message.ticket);
        say(interpolate(gettext("You joined %s."), [message.ticket.subject]));
        openPane(message.ticket.id);
        break;
      }
      case "ticket.status":
        paneStatus(message);
        break;
      case "presence.changed":
        showPresence(message.presence, message.reason !== "agent" ? message.message : "");
        break;
      case "error":
        if (message.offer_id) offerError(message.offer_id, message.error.message);
        break;
    }
  }

  function connect() {
    retry = null;
    setLive("connecting", attempts ? gettext("Reconnecting…") : gettext("Connecting…"));
    socket = new WebSocket(H.socketUrl("/ws/agent/"));
    socket.onopen = function () {
      attempts = 0;
      opened += 1;
      setLive("live", gettext("Live"));
      // The server greets every connection with a snapshot; after a reconnect
      // the page asks for one as well rather than count on that greeting.
      if (opened > 1) send({ type: "resync" });
      pinger = window.setInterval(function () { send({ type: "ping" }); }, 20000);
    };
    socket.onmessage = function (event) { handle(JSON.parse(event.data)); };
    socket.onclose = function (event) {
      window.clearInterval(pinger);
      if (event.code === 4401 || event.code === 4403) {
        setLive("off", gettext("Live updates are off: reload the page"));
        return;
      }
      attempts += 1;
      setLive("stale", gettext("Reconnecting…"));
      // Offers answered while the socket was down fall back to HTTP (see answer()).
      retry = window.setTimeout(connect, H.backoff(attempts));
    };
  }

  // Back in view: catch up on whatever the browser held back while the tab was
  // hidden, or reconnect at once instead of waiting out a (throttled) backoff.
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState !== "visible") return;
    if (send({ type: "resync" })) return;
    if (retry !== null) {
      window.clearTimeout(retry);
      connect();
    }
  });

  // The surge moves with the queue; refresh it now and then.
  function pollSurge() {
    fetch("/api/v1/pricing/surge/", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : null))
      .then(function (body) {
        if (body) document.getElementById("surge-multiplier").textContent = body.multiplier;
      })
      .catch(function () {})
      .finally(function () { window.setTimeout(pollSurge, 10000); });
  }

  // Expose the socket for tests and debugging (e.g. forcing a reconnect).
  root.reconnect = function () { if (socket) socket.close(); };
  attachPane();
  connect();
  window.setTimeout(pollSurge, 15000);
})();
