// Small helpers shared by the live pages (floor, agent console, help centre).
// Formats mirror marketplace/templatetags/humanline_format.py.
(function () {
  "use strict";
  function duration(seconds) {
    if (seconds === null || seconds === undefined || seconds === "") return "—";
    const total = Math.round(Number(seconds));
    if (total < 60) return total + " s";
    if (total < 3600) {
      const m = Math.floor(total / 60), s = total % 60;
      return s ? m + " min " + s + " s" : m + " min";
    }
    return Math.floor(total / 3600) + " h " + Math.floor((total % 3600) / 60) + " min";
  }
  function percent(share) {
    if (share === null || share === undefined || share === "") return "—";
    return Math.round(Number(share) * 100) + " %";
  }
  function money(m) {
    try {
      return new Intl.NumberFormat(document.documentElement.lang || "en", {
        style: "currency", currency: m.currency,
      }).format(Number(m.amount));
    } catch (e) {
      return m.amount + " " + m.currency;
    }
  }
  // el("li", {class: "x", dataset: {id: 1}}, "text", child…)
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  function csrf() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }
  function socketUrl(path) {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
  }
  // Reconnect delays: 0.5 s, 1 s, 2 s … capped at 15 s, with jitter so that a
  // restarted server is not hit by every browser at the same instant.
  function backoff(attempt) {
    const base = Math.min(15000, 500 * 2 ** Math.min(attempt, 5));
    return base / 2 + Math.random() * base / 2;
  }
  window.Humanline = { duration, percent, money, el, csrf, socketUrl, backoff };
})();
