// The live pages' connection state, shown in the top bar. htmx's ws extension swaps the
// pushed fragments and reconnects after a dropped connection (close codes 1006, 1011,
// 1012, 1013) with back-off; each (re)connection gets a fresh snapshot from the server.
// 4401 means the session is gone: reload, which leads to the sign-in page.
(function () {
  "use strict";
  const SIGNED_OUT = 4401;

  function show(state, text) {
    const el = document.getElementById("live-status");
    if (!el) return;
    el.hidden = false;
    el.dataset.state = state;
    el.textContent = text;
    el.title = state === "live"
      ? "This page updates itself as tasks and workers change."
      : "Live updates are paused; the page shows what it last received.";
  }

  // A pushed task head with a new state: the user's controls (revoke, terminate, retry)
  // depend on it and on the user's role, so ask the server for them again.
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    const head = event.target; // the element swapped in
    const controls = document.getElementById("task-controls");
    if (!controls || !head || head.id !== "task-head") return;
    if (head.dataset.state !== controls.dataset.state) htmx.trigger(document.body, "task-state-changed");
  });

  document.addEventListener("htmx:wsConnecting", function () { show("connecting", "Connecting…"); });
  document.addEventListener("htmx:wsOpen", function () { show("live", "Live"); });
  document.addEventListener("htmx:wsClose", function (event) {
    const code = event.detail && event.detail.event ? event.detail.event.code : 0;
    if (code === SIGNED_OUT) {
      window.location.reload();
      return;
    }
    // An element leaving the page (a new filter) closes its socket with 1000: not news.
    if (code !== 1000 && code !== 1005) show("paused", "Reconnecting…");
  });
})();
