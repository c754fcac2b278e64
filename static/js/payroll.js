// Pay periods on the floor: start a close or an export without leaving the page,
// show its progress, then the result.  The server renders the card
// (GET /ops/pay-periods/); this script posts the card's forms as JSON, polls
// each job under way (GET /api/v1/admin/payroll-jobs/{id}/) and redraws the card
// when a job ends.  Without JavaScript the forms post and redirect.
(function () {
  "use strict";
  const H = window.Humanline;
  if (!H || !document.getElementById("pay-periods")) return;
  const POLL_MS = 800;
  const polling = new Set();

  function card() { return document.getElementById("pay-periods"); }

  function say(periodId, message) {
    const row = card().querySelector('[data-period="' + periodId + '"]');
    const note = row && row.querySelector("[data-row-message]");
    if (!note) return;
    note.textContent = message;
    note.hidden = !message;
  }

  // Keyboard users keep their place: the button they pressed is gone after a redraw.
  function focusRow(periodId) {
    const row = card().querySelector('[data-period="' + periodId + '"]');
    if (!row) return;
    const target = row.querySelector("a, button:not([disabled])") || row.querySelector(".job-text");
    if (!target) return;
    if (!target.matches("a, button")) target.setAttribute("tabindex", "-1");
    target.focus({ preventScroll: true });
  }

  // Redraw the card from the server; keep a message shown in a row.
  function refresh(keep) {
    return fetch(card().dataset.url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        const holder = document.createElement("div");
        holder.innerHTML = html.trim();
        card().replaceWith(holder.firstElementChild);
        if (keep) {
          say(keep.periodId, keep.message);
          if (keep.focus) focusRow(keep.periodId);
        }
        watch();
      });
  }

  function draw(node, job) {
    const bar = node.querySelector(".job-bar");
    const fill = bar && bar.querySelector("span");
    node.classList.toggle("indeterminate", job.progress === null);
    if (bar && job.progress !== null) {
      const percent = Math.round(job.progress * 100);
      fill.style.width = percent + "%";
      bar.setAttribute("aria-valuenow", String(percent));
    }
    const text = node.querySelector(".job-text");
    if (text.textContent !== job.status_text) text.textContent = job.status_text;
  }

  function poll(node) {
    const id = node.dataset.job;
    if (polling.has(id)) return;
    polling.add(id);
    let failures = 0;
    function step() {
      fetch(node.dataset.jobUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (job) {
          failures = 0;
          const live = document.querySelector('[data-job="' + id + '"]') || node;
          draw(live, job);
          if (job.status === "done" || job.status === "failed") {
            polling.delete(id);
            refresh();
            return;
          }
          window.setTimeout(step, POLL_MS);
        })
        .catch(function () {
          failures += 1;
          window.setTimeout(step, Math.min(15000, POLL_MS * 2 ** failures));
        });
    }
    step();
  }

  function watch() {
    card().querySelectorAll('[data-job][data-active="true"]').forEach(poll);
  }

  document.addEventListener("submit", function (event) {
    const form = event.target.closest("#pay-periods form[data-job-form]");
    if (!form) return;
    event.preventDefault();
    const row = form.closest("[data-period]");
    const periodId = row.dataset.period;
    const button = form.querySelector("button");
    button.disabled = true;
    button.textContent = button.textContent.replace(/^(Close week|Prepare CSV|Prepare again)$/, "Starting…");
    say(periodId, "");
    fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": H.csrf() },
      body: new FormData(form),
    })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (answer) {
        const message = answer.ok ? "" : (answer.body.error && answer.body.error.message) || "That did not work; try again.";
        return refresh({ periodId: periodId, message: message, focus: true });
      })
      .catch(function () {
        button.disabled = false;
        say(periodId, "The server did not answer; try again.");
      });
  });

  watch();
})();
