// The ticket page, live: place in line, new messages, status changes.
// The page works without this script; with it, messages travel over the
// ticket's socket and reconnects resync from the last message seen.
(function () {
  "use strict";
  const root = document.querySelector("[data-ticket]");
  if (!root || !("WebSocket" in window)) return;
  const ticketId = root.dataset.ticket;
  const list = document.getElementById("messages");
  const form = document.getElementById("message-form");
  const errorBox = document.getElementById("message-error");
  let lastId = Number(root.dataset.lastMessage || 0);
  let status = root.dataset.status;
  let socket = null;
  let attempts = 0;

  function minutes(seconds) {
    const m = Math.max(1, Math.ceil(seconds / 60));
    return m + (m === 1 ? " minute" : " minutes");
  }

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
    time.textContent = new Date(m.created_at).toTimeString().slice(0, 5);
    item.append(who, body, time);
    list.append(item);
    lastId = Math.max(lastId, m.id);
  }

  function showPlace(event) {
    const place = document.getElementById("queue-place");
    document.getElementById("queue-position").textContent = event.queue_position;
    document.getElementById("queue-eta").textContent = minutes(event.eta_seconds);
    place.hidden = false;
  }

  function handle(event) {
    switch (event.type) {
      case "ticket.message":
        addMessage(event.message);
        break;
      case "queue.position":
        if (status === "queued" || status === "offered") showPlace(event);
        break;
      case "ticket.status":
        // A new status changes what the page offers (rating, resolve…): redraw it.
        if (event.status !== status) window.location.reload();
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
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(
      scheme + "://" + window.location.host + "/ws/tickets/" + ticketId + "/?since=" + lastId
    );
    socket.onopen = function () {
      attempts = 0;
      root.dataset.live = "true";
    };
    socket.onmessage = function (message) {
      handle(JSON.parse(message.data));
    };
    socket.onclose = function (closed) {
      root.dataset.live = "false";
      if (closed.code === 4401 || closed.code === 4403) return;
      attempts += 1;
      window.setTimeout(connect, Math.min(15000, 500 * 2 ** attempts));
    };
  }

  if (form) {
    form.addEventListener("submit", function (submit) {
      if (!socket || socket.readyState !== WebSocket.OPEN) return; // plain POST instead
      submit.preventDefault();
      const field = form.querySelector("textarea");
      const body = field.value.trim();
      if (!body) return;
      if (errorBox) errorBox.hidden = true;
      socket.send(JSON.stringify({ type: "ticket.message", body: body }));
      field.value = "";
    });
  }
  connect();
})();
