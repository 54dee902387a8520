// The task pages' enhancements (no inline scripts, CSP-friendly):
// - controls that need JavaScript are rendered hidden with data-js-only and shown here;
// - copy buttons (data-copy="<element id>") copy that element's text;
// - htmx does not swap 4xx responses by default: targets marked data-swap-errors take the
//   400/404 fragments, which carry the error message.
(function () {
  "use strict";

  function reveal(root) {
    (root || document).querySelectorAll("[data-js-only][hidden]").forEach(function (el) {
      el.hidden = false;
    });
  }

  function selectText(el) {
    const range = document.createRange();
    range.selectNodeContents(el);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function flash(button, text) {
    if (!button.dataset.label) button.dataset.label = button.textContent;
    button.textContent = text;
    setTimeout(function () { button.textContent = button.dataset.label; }, 1200);
  }

  document.addEventListener("DOMContentLoaded", function () { reveal(); });
  document.addEventListener("htmx:afterSwap", function (event) { reveal(event.target); });
  document.addEventListener("htmx:oobAfterSwap", function (event) { reveal(event.target); });

  document.addEventListener("click", function (event) {
    const button = event.target.closest("button[data-copy]");
    if (!button) return;
    const source = document.getElementById(button.dataset.copy);
    if (!source) return;
    const text = source.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { flash(button, "Copied"); },
        function () { selectText(source); flash(button, "Selected: press Ctrl+C"); }
      );
    } else {
      // Plain http: the clipboard API is off; select the text for the user to copy.
      selectText(source);
      flash(button, "Selected: press Ctrl+C");
    }
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    const status = event.detail.xhr.status;
    const target = event.detail.target;
    if ((status === 400 || status === 404) && target && target.closest("[data-swap-errors]")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
