// A ticket's conversation, live: place in line, the agent joining, messages, status.
// The page works without this script; with it, messages travel over the
// ticket's socket (/ws/tickets/<id>/) and a reconnect resyncs from the last
// message seen (?since=<id>), so nothing is lost and nothing is shown twice.
//
// window.HumanlineConversation.attach(root, {onStatus}) wires one conversation;
// the help centre's ticket page is attached automatically, the agent console
// attaches its pane itself (root has data-manual) and passes onStatus.
//
// On the customer's page it also says why nobody has taken the ticket yet, once
// it waited past its target (ticket.waiting; the socket repeats it on every
// connect), and offers the languages the pool serves now: switching goes through
// POST /api/v1/tickets/<id>/language/, and without this script the same buttons
// post a form to /help/tickets/<id>/language/.
//
// Its words come from Django's JavaScript catalog (/i18n/js/, the djangojs
// domain), loaded before it; without the catalog it speaks English.
(function () {
  "use strict";
  if (!("WebSocket" in window)) return;

  const gettext = window.gettext || ((text) => text);
  const ngettext = window.ngettext || ((one, many, n) => (n === 1 ? one : many));
  const interpolate = window.interpolate || function (format, args, named) {
    let i = 0;
    return named
      ? format.replace(/%\((\w+)\)s/g, (match, key) => args[key])
      : format.replace(/%s/g, () => args[i++]);
  };

  function minutes(seconds) {
    const m = Math.max(1, Math.ceil(seconds / 60));
    return interpolate(ngettext("%s minute", "%s minutes", m), [m]);
  }

  // A time as the server writes it (H:i), in the viewer's time zone as the server
  // chose it (their profile's, else UTC), not the browser's: live messages then
  // read like the ones the page was rendered with.
  function clock(iso) {
    const lang = document.documentElement.lang || undefined;
    const shown = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    const zone = document.body.dataset.timeZone;
    try {
      return new Date(iso).toLocaleTimeString(lang, zone ? { ...shown, timeZone: zone } : shown);
    } catch (e) {
      return new Date(iso).toLocaleTimeString(lang, shown);  // a zone the browser lacks
    }
  }

  function attach(root, options) {
    options = options || {};
    const ticketId = root.dataset.ticket;
    const list = root.querySelector(".messages");
    const form = root.querySelector(".message-form");
    const errorBox = root.querySelector(".message-error");
    let lastId = Number(root.dataset.lastMessage || 0);
    let status = root.dataset.status;
    let socket = null;
    let attempts = 0;
    let closed = false;
    let pinger = null;

    function addMessage(m) {
      if (list.querySelector('[data-id="' + m.id + '"]')) return;
      const item = document.createElement("li");
      item.className = "msg " + m.author_role;
      item.dataset.id = m.id;
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = m.author.name;
      const body = document.createElement("p");
      body.textContent = m.body;
      const time = document.createElement("time");
      time.dateTime = m.created_at;
      time.textContent = clock(m.created_at);
      item.append(who, body, time);
      list.append(item);
      lastId = Math.max(lastId, m.id);
      item.scrollIntoView({ block: "nearest" });
    }

    function joined(agent) {
      if (!agent || list.querySelector("[data-system=joined]")) return;
      const item = document.createElement("li");
      item.className = "msg system";
      item.dataset.system = "joined";
      item.textContent = interpolate(gettext("%s joined the conversation"), [agent.name]);
      list.append(item);
      const who = document.querySelector("[data-testid=ticket-agent]");
      if (who && who.dataset.role === "customer") {
        who.textContent = interpolate(gettext("%s is helping you."), [agent.name]);
        who.hidden = false;
      }
    }

    function showPlace(event) {
      const place = document.getElementById("queue-place");
      if (!place) return;
      document.getElementById("queue-position").textContent = event.queue_position;
      document.getElementById("queue-eta").textContent = minutes(event.eta_seconds);
      place.hidden = false;
    }

    function isWaiting(value) {
      return value === "queued" || value === "offered";
    }

    // --- why the ticket waits (the customer's page only) ---
    const reasonBox = root.querySelector("#waiting-reason");
    const reasonText = reasonBox && reasonBox.querySelector("#waiting-reason-message");
    const choices = reasonBox && reasonBox.querySelector(".language-choices");
    const choiceError = reasonBox && reasonBox.querySelector("#language-error");
    let names = null;
    let requests = 0; // the newest ticket read wins; an older answer is dropped

    function languageName(code) {
      if (names === null) {
        const node = document.getElementById("language-names");
        names = node ? JSON.parse(node.textContent) : {};
      }
      return names[code] || code;
    }

    function showChoiceError(text) {
      choiceError.textContent = text;
      choiceError.hidden = !text;
    }

    function showReason(reason) {
      if (!reasonBox) return;
      const text = reason ? reason.message : "";
      // Writing the same words again would have a screen reader say them again.
      if (reasonText.textContent !== text) reasonText.textContent = text;
      reasonBox.dataset.code = reason ? reason.code : "";
      const languages = (reason && reason.code === "language_unserved" && reason.languages) || [];
      const buttons = Array.from(choices.querySelectorAll("button"));
      if (buttons.map((b) => b.value).join(" ") !== languages.join(" ")) {
        const hadFocus = buttons.includes(document.activeElement);
        buttons.forEach((b) => b.remove());
        languages.forEach(function (code) {
          choices.append(window.Humanline.el(
            "button", { type: "submit", name: "language", value: code, class: "secondary" },
            interpolate(gettext("Continue in %s"), [languageName(code)])
          ));
        });
        // The button pressed is gone: keep the keyboard where the news is.
        if (hadFocus) reasonText.focus();
      }
      choices.hidden = languages.length === 0;
      if (!reason) showChoiceError("");
      const clause = document.getElementById("queue-eta-clause");
      if (clause) {
        clause.hidden = !!reason && reasonBox.dataset.noEstimate.split(" ").includes(reason.code);
      }
    }

    // A ticket as the API gives it: its language, place in line and waiting reason.
    function showTicket(ticket) {
      const badge = document.querySelector("[data-testid=ticket-language]");
      if (badge && badge.title !== ticket.language) {
        badge.textContent = languageName(ticket.language);
        badge.title = ticket.language;
      }
      if (ticket.queue_position !== null && isWaiting(status)) showPlace(ticket);
      showReason(isWaiting(ticket.status) ? ticket.waiting_reason : null);
    }

    // The reason is worked out when it is read: once told, the customer's page
    // reads it again whenever the ticket changes while it waits.
    function refreshReason() {
      const mine = ++requests;
      fetch("/api/v1/tickets/" + ticketId + "/", {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then((response) => (response.ok ? response.json() : null))
        .then(function (ticket) {
          if (ticket && mine === requests) showTicket(ticket);
        })
        .catch(function () {}); // the next change or reconnect tells again
    }

    // One switch at a time; the buttons stay enabled (a disabled button loses
    // the keyboard focus, which should move to the news instead).
    let switching = false;

    function onContinueIn(submit) {
      const button = submit.submitter;
      if (!button || !button.value) return; // a plain POST instead
      submit.preventDefault();
      if (switching) return;
      switching = true;
      choices.setAttribute("aria-busy", "true");
      showChoiceError("");
      const mine = ++requests;
      fetch("/api/v1/tickets/" + ticketId + "/language/", {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "X-CSRFToken": window.Humanline.csrf(),
          "Content-Type": "application/json",
          Accept: "application/json",
        },
        body: JSON.stringify({ language: button.value }),
      })
        .then(function (response) {
          return response.json().then(function (body) {
            if (!response.ok) {
              showChoiceError((body.error && body.error.message) || gettext("Could not change the language."));
            } else if (mine === requests) {
              showTicket(body);
            }
          });
        })
        .catch(function () {
          showChoiceError(gettext("Could not reach Humanline. Check your connection."));
        })
        .finally(function () {
          switching = false;
          choices.removeAttribute("aria-busy");
        });
    }

    if (choices) choices.addEventListener("submit", onContinueIn);

    // The help page updates in place while the ticket waits and when an agent
    // joins; any other change alters what it offers (rating, reopen…): redraw.
    function defaultStatus(event) {
      if (event.status === "assigned" && (status === "queued" || status === "offered")) {
        const badge = document.querySelector("[data-testid=ticket-status]");
        if (badge) {
          badge.textContent = gettext("Assigned");
          badge.className = "badge assigned";
        }
        const place = document.getElementById("queue-place");
        if (place) place.hidden = true;
        document.querySelectorAll("[data-while-waiting]").forEach((n) => (n.hidden = true));
        return;
      }
      if (event.status === "offered" || event.status === "queued") {
        if (status === "queued" || status === "offered") return;
      }
      window.location.reload();
    }

    function handle(event) {
      switch (event.type) {
        case "ticket.message":
          addMessage(event.message);
          break;
        case "queue.position":
          if (status === "queued" || status === "offered") showPlace(event);
          break;
        case "ticket.assigned":
          joined(event.agent);
          break;
        case "ticket.waiting":
          if (isWaiting(status)) showReason(event.waiting_reason);
          break;
        case "ticket.status":
          // A status event that keeps the status but says why is a change in
          // place (the customer continued in another language).
          if (reasonBox && reasonBox.dataset.code && (event.status !== status || event.reason)) {
            if (isWaiting(event.status)) refreshReason();
            else showReason(null);
          }
          if (event.status !== status) {
            const previous = status;
            (options.onStatus || defaultStatus)(event, previous);
            status = event.status;
            root.dataset.status = status;
          }
          break;
        case "error":
          if (errorBox) {
            errorBox.textContent = event.error.message;
            errorBox.hidden = false;
          }
          break;
      }
    }

    function connect() {
      if (closed) return;
      socket = new WebSocket(
        (location.protocol === "https:" ? "wss" : "ws") + "://" + location.host +
          "/ws/tickets/" + ticketId + "/?since=" + lastId
      );
      socket.onopen = function () {
        attempts = 0;
        root.dataset.live = "true";
        pinger = window.setInterval(function () {
          if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ping" }));
        }, 25000);
      };
      socket.onmessage = function (message) {
        handle(JSON.parse(message.data));
      };
      socket.onclose = function (event) {
        root.dataset.live = "false";
        window.clearInterval(pinger);
        if (closed || event.code === 4401 || event.code === 4403) return;
        attempts += 1;
        window.setTimeout(connect, Math.min(15000, 500 * 2 ** attempts));
      };
    }

    function onSubmit(submit) {
      if (!socket || socket.readyState !== WebSocket.OPEN) return; // plain POST instead
      submit.preventDefault();
      const field = form.querySelector("textarea");
      const body = field.value.trim();
      if (!body) return;
      if (errorBox) errorBox.hidden = true;
      socket.send(JSON.stringify({ type: "ticket.message", body: body }));
      field.value = "";
      field.focus();
    }

    if (form) {
      form.addEventListener("submit", onSubmit);
      // Enter sends, Shift+Enter starts a new line: what chat users expect.
      form.querySelector("textarea").addEventListener("keydown", function (key) {
        if (key.key === "Enter" && !key.shiftKey && !key.isComposing) {
          key.preventDefault();
          form.requestSubmit();
        }
      });
    }
    connect();
    return {
      close: function () {
        closed = true;
        window.clearInterval(pinger);
        if (socket) socket.close();
      },
    };
  }

  window.HumanlineConversation = { attach: attach };
  document.addEventListener("DOMContentLoaded", function () {
    const root = document.querySelector("[data-ticket]:not([data-manual])");
    if (root) attach(root);
  });
})();
