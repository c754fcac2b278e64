// The operations floor, live: polls GET /api/v1/admin/floor/ and redraws in place.
// Polling (not a socket) because the figures are aggregates over many rows:
// one query set every few seconds per open floor is cheaper than pushing on
// every ticket change, and a missed poll heals itself on the next one.
(function () {
  "use strict";
  const H = window.Humanline;
  const root = document.getElementById("floor");
  if (!root || !H) return;
  const url = root.dataset.url;
  const every = Number(root.dataset.pollMs || 2500);
  const live = document.getElementById("floor-live");
  const liveText = document.getElementById("floor-live-text");
  const announcer = document.getElementById("floor-announce");
  const pastCard = document.getElementById("past-target");
  // The title as base.html writes it, without the server-rendered "(N) " alert count.
  const baseTitle = document.title.replace(/^\(\d+\) /, "");
  let pastCount = Number(pastCard ? pastCard.dataset.count : 0);
  const history = []; // {waiting, online} samples since the page opened
  const HISTORY = 60;
  const SVG = "http://www.w3.org/2000/svg";
  let failures = 0;

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  }

  function setFigures(data) {
    root.querySelectorAll("[data-figure]").forEach(function (node) {
      const value = data[node.dataset.figure];
      if (value === undefined) return;
      const format = node.dataset.format;
      const text = format === "duration" ? H.duration(value)
        : format === "percent" ? H.percent(value)
          : value === null ? "—" : String(value);
      if (node.textContent !== text) {
        node.textContent = text;
        node.classList.remove("changed");
        void node.offsetWidth; // restart the highlight animation
        node.classList.add("changed");
      }
    });
    const waitingCard = root.querySelector("[data-kpi=waiting]");
    if (waitingCard) waitingCard.classList.toggle("attention", data.waiting > 0);
    const staffingCard = root.querySelector("[data-kpi=staffing]");
    if (staffingCard) {
      staffingCard.classList.toggle("attention", data.agents_online < data.staffing_required_now);
    }
  }

  // Rebuild a table body from rows; a keyboard user focused on a ticket's link
  // stays on that ticket's link (the rows are rebuilt on every poll).
  function setRows(body, rows, columns, empty, row) {
    const focused = body.contains(document.activeElement) ? document.activeElement.closest("tr") : null;
    const focusedTicket = focused ? focused.dataset.ticket : null;
    body.replaceChildren();
    if (!rows.length) {
      body.append(H.el("tr", { class: "empty-row" }, H.el("td", { colspan: columns }, empty)));
      return;
    }
    for (const t of rows) body.append(row(t));
    if (focusedTicket) {
      const link = body.querySelector('tr[data-ticket="' + focusedTicket + '"] a');
      if (link) link.focus();
    }
  }

  function ticketLink(t) {
    return H.el("a", { href: "/help/tickets/" + t.id + "/" }, "#" + t.id + " " + t.subject);
  }

  function setWaiting(rows) {
    setRows(document.getElementById("waiting-rows"), rows, 4, "Nobody is waiting. 🎉", function (t) {
      return H.el("tr", { dataset: { ticket: t.id } },
        H.el("td", {}, ticketLink(t)),
        H.el("td", {}, t.category + " · " + t.language + " ",
          t.priority !== "normal" ? H.el("span", { class: "badge priority-" + t.priority }, t.priority) : null),
        H.el("td", {}, H.el("span", { class: "badge " + t.status }, t.status)),
        H.el("td", {}, H.duration(t.waiting_seconds)));
    });
  }

  // Customers waiting past their target, with why nobody takes them; the count
  // also goes into the tab's title, so that staff on another tab see it.
  function setPastTarget(data) {
    const count = data.past_target_count;
    pastCard.classList.toggle("attention", count > 0);
    setRows(document.getElementById("past-target-rows"), data.past_target, 5,
      "No customer is waiting past their target.", function (t) {
        return H.el("tr", { dataset: { ticket: t.id } },
          H.el("td", {}, ticketLink(t), " ",
            H.el("span", { class: "muted small lane" }, t.category + " · " + t.language)),
          H.el("td", { class: "roomy" }, H.el("span", { class: "badge priority-" + t.priority }, t.priority)),
          H.el("td", { class: "when" }, H.el("strong", {}, H.duration(t.waiting_seconds)), " ",
            H.el("span", { class: "muted" }, "· target " + H.duration(t.target_seconds))),
          H.el("td", { class: "roomy" }, t.rung),
          H.el("td", { class: "reason" }, t.reason));
      });
    const more = Math.max(0, count - data.past_target.length);
    document.getElementById("past-target-more").hidden = more === 0;
    document.getElementById("past-target-more-count").textContent = more;
    const title = count > 0 ? "(" + count + ") " + baseTitle : baseTitle;
    if (document.title !== title) document.title = title;
    if (count !== pastCount) {
      announcer.textContent = count === 0 ? "No customer is waiting past their target."
        : count === 1 ? "1 customer is waiting past their target."
          : count + " customers are waiting past their target.";
      pastCount = count;
    }
  }

  function setThemes(themes) {
    const list = document.getElementById("themes");
    list.replaceChildren();
    if (!themes.length) {
      list.append(H.el("li", { class: "muted" }, "No feedback tagged yet."));
      return;
    }
    for (const theme of themes) {
      list.append(H.el("li", {},
        H.el("span", { class: "theme-count" }, theme.count),
        H.el("div", {}, H.el("strong", {}, theme.area), " ",
          H.el("span", { class: "badge kind-" + theme.kind }, theme.kind),
          H.el("p", { class: "muted" }, "“" + theme.latest_text + "”"))));
    }
  }

  // Stacked bars: answered within target (green) and later (amber), per 5 minutes.
  function drawAnswered(buckets) {
    const chart = document.getElementById("answered-chart");
    const W = 360, H0 = 140, pad = 18, base = H0 - pad;
    const max = Math.max(4, ...buckets.map((b) => b.answered));
    const step = (W - 2 * pad) / buckets.length;
    chart.replaceChildren();
    for (let i = 0; i <= 2; i++) {
      const y = base - (i / 2) * (base - 8);
      chart.append(svg("line", { x1: pad, x2: W - pad, y1: y, y2: y, class: "grid-line" }));
      const label = svg("text", { x: 2, y: y + 3, class: "axis" });
      label.textContent = Math.round((i / 2) * max);
      chart.append(label);
    }
    buckets.forEach(function (b, i) {
      const x = pad + i * step + 3, w = step - 6;
      const hOk = (b.within_target / max) * (base - 8);
      const hLate = ((b.answered - b.within_target) / max) * (base - 8);
      const title = svg("title", {});
      title.textContent = new Date(b.starts_at).toTimeString().slice(0, 5) + ": " +
        b.answered + " answered, " + b.within_target + " within target";
      const group = svg("g", {});
      group.append(title,
        svg("rect", { x: x, y: base - hOk, width: w, height: hOk, rx: 2, class: "bar ok" }),
        svg("rect", { x: x, y: base - hOk - hLate, width: w, height: hLate, rx: 2, class: "bar late" }));
      chart.append(group);
    });
    const first = svg("text", { x: pad, y: H0 - 3, class: "axis" });
    first.textContent = "−60 min";
    const last = svg("text", { x: W - pad, y: H0 - 3, class: "axis", "text-anchor": "end" });
    last.textContent = "now";
    chart.append(first, last);
  }

  // Two live lines from the samples this page has polled.
  function drawQueue() {
    const chart = document.getElementById("queue-chart");
    const W = 360, H0 = 140, pad = 18, base = H0 - pad;
    chart.replaceChildren();
    const max = Math.max(4, ...history.map((s) => Math.max(s.waiting, s.online)));
    for (let i = 0; i <= 2; i++) {
      const y = base - (i / 2) * (base - 8);
      chart.append(svg("line", { x1: pad, x2: W - pad, y1: y, y2: y, class: "grid-line" }));
      const label = svg("text", { x: 2, y: y + 3, class: "axis" });
      label.textContent = Math.round((i / 2) * max);
      chart.append(label);
    }
    const step = (W - 2 * pad) / (HISTORY - 1);
    function line(key, cls) {
      if (!history.length) return;
      const offset = HISTORY - history.length;
      const points = history.map(function (s, i) {
        return (pad + (offset + i) * step).toFixed(1) + "," +
          (base - (s[key] / max) * (base - 8)).toFixed(1);
      });
      chart.append(svg("polyline", { points: points.join(" "), class: "spark " + cls }));
      const lastPoint = points[points.length - 1].split(",");
      chart.append(svg("circle", { cx: lastPoint[0], cy: lastPoint[1], r: 3, class: "dot " + cls }));
    }
    line("online", "online");
    line("waiting", "waiting");
    const label = svg("text", { x: W - pad, y: H0 - 3, class: "axis", "text-anchor": "end" });
    label.textContent = "now";
    chart.append(label);
  }

  function render(data) {
    setFigures(data);
    setWaiting(data.longest_waiting);
    setPastTarget(data);
    setThemes(data.feedback_themes);
    history.push({ waiting: data.waiting, online: data.agents_online });
    if (history.length > HISTORY) history.shift();
    drawAnswered(data.buckets);
    drawQueue();
    root.dataset.updatedAt = data.now;
    root.dataset.polls = String(Number(root.dataset.polls || 0) + 1);
    live.dataset.state = "live";
    liveText.textContent = "Live · updated " + new Date(data.now).toTimeString().slice(0, 8);
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 401 || response.status === 403) {
          live.dataset.state = "off";
          liveText.textContent = "Signed out: reload to sign in again";
          throw new Error("stop");
        }
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        failures = 0;
        render(data);
        window.setTimeout(poll, every);
      })
      .catch(function (error) {
        if (error.message === "stop") return;
        failures += 1;
        live.dataset.state = "stale";
        liveText.textContent = "Reconnecting…";
        window.setTimeout(poll, Math.min(30000, every * 2 ** failures));
      });
  }

  poll();
})();
