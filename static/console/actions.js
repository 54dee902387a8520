// Action forms (hx-post): htmx does not swap 4xx/5xx responses by default, but an action's
// refusal carries its reason, so targets marked data-action-result take them too.
(function () {
  "use strict";
  document.addEventListener("htmx:beforeSwap", function (event) {
    const status = event.detail.xhr.status;
    const target = event.detail.target;
    if (status >= 400 && target && target.closest("[data-action-result]")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
