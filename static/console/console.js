// Relative times: every <time datetime> reads "3 min ago", with the exact time kept in its
// title. Runs on load, after every htmx swap, and each 15 s so ages stay true.
(function () {
  "use strict";
  const units = [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]];

  function ago(seconds) {
    const future = seconds < 0;
    const abs = Math.abs(seconds);
    if (abs < 1) return "just now";
    for (const [name, size] of units) {
      if (abs >= size) {
        const text = Math.floor(abs / size) + " " + name;
        return future ? "in " + text : text + " ago";
      }
    }
    return "just now";
  }

  function refresh(root) {
    const now = Date.now();
    (root || document).querySelectorAll("time[datetime]").forEach(function (el) {
      const at = Date.parse(el.getAttribute("datetime"));
      if (!Number.isNaN(at)) el.textContent = ago((now - at) / 1000);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { refresh(); });
  document.addEventListener("htmx:afterSwap", function (event) { refresh(event.target); });
  document.addEventListener("htmx:oobAfterSwap", function (event) { refresh(event.target); });
  setInterval(refresh, 15000);
})();
