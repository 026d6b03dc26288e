// The labeling page's keys, live validation and damage box (cloud/console/labeling.py).
// Without this script the page still works: the forms post and the server validates.
(function () {
  "use strict";
  var card = document.getElementById("sample");
  if (!card) return;
  var form = document.getElementById("label-form");
  var check = document.getElementById("check");
  var csrf = card.dataset.csrf;
  var kind = card.dataset.kind;
  var skip = document.getElementById("skip");
  var seq = 0;

  function show(result) {
    check.textContent = "";
    check.className = "check " + (result.ok ? "ok" : "bad");
    if (result.ok) {
      var parts = Object.keys(result.fields || {}).map(function (k) {
        return k + " " + result.fields[k];
      });
      check.textContent = "✓ " + (parts.length ? parts.join(" · ") : result.value);
    } else {
      var first = (result.issues || [])[0] || { code: "?", message: "" };
      check.textContent = "✗ " + first.code + ": " + first.message;
    }
  }

  function validate(body) {
    var mine = ++seq;
    fetch("/console/label/validate", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (result) { if (result && mine === seq) show(result); })
      .catch(function () { /* the server checks again on save */ });
  }

  function editing(el) {
    if (!el) return false;
    return (el.tagName === "INPUT" && el.type !== "radio") || el.tagName === "TEXTAREA";
  }

  document.addEventListener("keydown", function (ev) {
    if (ev.key === "ArrowRight" && skip && !editing(document.activeElement)) {
      window.location.href = skip.href;
    }
  });

  if (kind === "code") {
    var input = document.getElementById("code-text");
    var timer = null;
    input.focus();
    input.select(); // typing replaces the reader's text; Enter confirms it as it is
    var run = function () { validate({ kind: "code", text: input.value }); };
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(run, 120);
    });
    input.addEventListener("keydown", function (ev) {
      // → at the end of an unchanged, fully selected text skips; otherwise it moves the caret
      if (ev.key === "ArrowRight" && input.selectionStart === 0 &&
          input.selectionEnd === input.value.length && skip) {
        ev.preventDefault();
        window.location.href = skip.href;
      }
    });
    run();
    return;
  }

  // defect frame: classes on keys 1-5, a drag box on the image, Enter saves
  var radios = Array.prototype.slice.call(form.querySelectorAll("input[name=class]"));
  var boxInput = document.getElementById("box-value");
  var wrap = document.getElementById("imgwrap");
  var img = document.getElementById("sample-image");
  var boxEl = document.getElementById("box");
  var start = null;

  function current() {
    var c = radios.filter(function (r) { return r.checked; })[0];
    var parts = boxInput.value ? boxInput.value.split(",").map(Number) : null;
    return { kind: "defect", class: c ? c.value : "", box: parts };
  }
  function scale() { return img.naturalWidth / img.clientWidth; }
  function drawBox() {
    var parts = boxInput.value ? boxInput.value.split(",").map(Number) : null;
    if (!parts || parts.length !== 4 || !img.naturalWidth) { boxEl.hidden = true; return; }
    var k = scale();
    boxEl.style.left = parts[0] / k + "px";
    boxEl.style.top = parts[1] / k + "px";
    boxEl.style.width = parts[2] / k + "px";
    boxEl.style.height = parts[3] / k + "px";
    boxEl.hidden = false;
  }
  function point(ev) {
    var r = img.getBoundingClientRect();
    return {
      x: Math.min(Math.max(ev.clientX - r.left, 0), r.width),
      y: Math.min(Math.max(ev.clientY - r.top, 0), r.height),
    };
  }

  document.addEventListener("keydown", function (ev) {
    if (editing(document.activeElement)) return; // typing in the box field: keys are text
    var n = parseInt(ev.key, 10);
    if (n >= 1 && n <= radios.length) {
      radios[n - 1].checked = true;
      radios[n - 1].focus();
      validate(current());
      ev.preventDefault();
    } else if (ev.key === "Escape") {
      boxInput.value = "";
      drawBox();
      validate(current());
    } else if (ev.key === "Enter" && !/^(BUTTON|A)$/.test(document.activeElement.tagName)) {
      ev.preventDefault();
      form.requestSubmit();
    }
  });
  radios.forEach(function (r) { r.addEventListener("change", function () { validate(current()); }); });
  boxInput.addEventListener("change", function () { drawBox(); validate(current()); });

  wrap.addEventListener("mousedown", function (ev) {
    ev.preventDefault();
    start = point(ev);
  });
  window.addEventListener("mousemove", function (ev) {
    if (!start) return;
    var p = point(ev);
    var k = scale();
    // in image pixels, kept inside the image (rounding must not push an edge out)
    var x = Math.round(Math.min(start.x, p.x) * k), y = Math.round(Math.min(start.y, p.y) * k);
    var w = Math.min(Math.round(Math.abs(p.x - start.x) * k), img.naturalWidth - x);
    var h = Math.min(Math.round(Math.abs(p.y - start.y) * k), img.naturalHeight - y);
    boxInput.value = [x, y, w, h].join(",");
    drawBox();
  });
  window.addEventListener("mouseup", function () {
    if (!start) return;
    start = null;
    validate(current());
  });
  if (img.complete) drawBox(); else img.addEventListener("load", drawBox);
  window.addEventListener("resize", drawBox);
})();
