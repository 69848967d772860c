// jobsvc dashboard: live refresh. A page whose <main> has data-live polls that URL (the page's JSON twin)
// and swaps in each [data-region] it gets back; polling pauses while the tab is hidden.
"use strict";
(function () {
  const main = document.querySelector("main[data-live]");
  if (!main) return;
  const url = main.dataset.live;
  const every = Math.max(1000, parseInt(main.dataset.refreshMs, 10) || 5000);
  const status = document.getElementById("live-status");
  let timer = null;
  let busy = false;

  function say(text, bad) {
    if (!status) return;
    status.textContent = text;
    status.classList.toggle("bad", !!bad);
  }

  async function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const resp = await fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}});
      if (resp.status === 401) {
        stop();
        say("signed out: reload the page to sign in again", true);
        return;
      }
      if (!resp.ok) {
        say("live refresh failed (" + resp.status + "); retrying", true);
        return;
      }
      const body = await resp.json();
      for (const [name, html] of Object.entries(body.regions || {})) {
        const region = main.querySelector('[data-region="' + name + '"]');
        if (!region) continue;
        // Do not yank a field out from under a user who is typing in it.
        const focus = document.activeElement;
        if (focus && region.contains(focus) && focus.matches("input, select, textarea")) continue;
        // Keep what the user opened or closed (a run, an audit entry's parameters) as it was.
        const opened = new Map();
        region.querySelectorAll("details[data-key]").forEach(function (d) { opened.set(d.dataset.key, d.open); });
        region.innerHTML = html;
        region.querySelectorAll("details[data-key]").forEach(function (d) {
          if (opened.has(d.dataset.key)) d.open = opened.get(d.dataset.key);
        });
      }
      say("live · updated " + new Date(body.at_ms).toLocaleTimeString());
      document.dispatchEvent(new CustomEvent("dashboard:refreshed"));
    } catch (err) {
      say("live refresh failed; retrying", true);
    } finally {
      busy = false;
    }
  }

  function start() {
    if (timer === null) timer = setInterval(refresh, every);
  }

  function stop() {
    if (timer !== null) clearInterval(timer);
    timer = null;
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      stop();
      say("live · paused");
    } else {
      refresh();
      start();
    }
  });
  say("live");
  start();
})();

// Forms with data-confirm ask before they submit.
document.addEventListener("submit", function (event) {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
