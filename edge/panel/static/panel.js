// Dockgate panel: the live line view's server-sent events. Plain JavaScript, no libraries.
"use strict";
(function () {
  const list = document.getElementById("cartons");
  if (!list || !window.EventSource) return;
  const badge = document.getElementById("live-state");
  const empty = document.getElementById("empty");
  const keep = 60;
  function setState(on) {
    if (!badge) return;
    badge.className = "badge " + (on ? "eq-ok" : "eq-off");
    badge.textContent = (on ? "✔ " : "○ ") + badge.dataset[on ? "on" : "off"];
  }
  const source = new EventSource(list.dataset.stream);
  source.onopen = function () { setState(true); };
  source.onerror = function () { setState(false); };
  source.addEventListener("carton", function (e) {
    const data = JSON.parse(e.data);
    // The HTML was rendered (and escaped) by the server's templates.
    const old = list.querySelector('[data-carton="' + CSS.escape(data.id) + '"]');
    if (old) old.remove();
    list.insertAdjacentHTML("afterbegin", data.html);
    const added = list.firstElementChild;
    if (added) added.classList.add("new");
    while (list.children.length > keep) list.lastElementChild.remove();
    if (empty) empty.classList.add("hidden");
  });
})();
