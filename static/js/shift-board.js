// The agent socket: live presence, and pings so the sweeper knows this agent is here.
//
// Its words come from Django's JavaScript catalog (/i18n/js/), loaded before it.
(function () {
  "use strict";
  var badge = document.getElementById("presence-badge");
  var status = document.getElementById("live-status");
  var labels = {online: gettext("Online"), away: gettext("Away"), offline: gettext("Offline")};
  function show(presence) {
    badge.textContent = labels[presence] || presence;
    badge.className = "badge " + presence;
  }
  var retry = 1000;
  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + "/ws/agent/");
    var timer = null;
    socket.onopen = function () {
      retry = 1000;
      timer = setInterval(function () { socket.send(JSON.stringify({type: "ping"})); }, 20000);
    };
    socket.onmessage = function (event) {
      var message = JSON.parse(event.data);
      if (message.type === "agent.snapshot") { show(message.agent.presence); status.textContent = gettext("Live."); }
      else if (message.type === "presence.changed") { show(message.presence); }
      else if (message.type === "shift.slot_cancelled") {
        status.textContent = interpolate(gettext("A shift you booked was cancelled: %s Reload to see your shifts."), [message.reason || ""]);
      }
    };
    socket.onclose = function (event) {
      clearInterval(timer);
      status.textContent = gettext("Reconnecting…");
      if (event.code === 4403 || event.code === 4401) { status.textContent = gettext("Live updates are off."); return; }
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    };
  }
  connect();
})();
