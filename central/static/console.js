// netvagt console: light progressive enhancement, served by the central itself (the pages
// work without it). The review form shows "accepted until" only for "accept the risk", and
// asks for a comment where a decision needs one.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var action = document.getElementById("action");
  var until = document.getElementById("until");
  var reason = document.getElementById("reason");
  if (!action || !until || !reason) {
    return;
  }
  var untilLabel = document.querySelector('label[for="until"]');
  function update() {
    var accepting = action.value === "accept";
    until.hidden = !accepting;
    until.required = accepting;
    if (untilLabel) {
      untilLabel.hidden = !accepting;
    }
    reason.required = action.value === "accept" || action.value === "false-positive";
  }
  action.addEventListener("change", update);
  update();
});
