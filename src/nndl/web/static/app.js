// nndl web app: a drawing canvas whose strokes are sent to the network as a PNG.
// Digit mode asks /api/predict (with the hidden layers' activations); number mode asks /api/read.
// Strokes are kept as lists of points so that "undo" can redraw all but the last one.
// Every answer (a digit, "unsure: 4 or 9", "No digit yet", an error, a cleared canvas) first resets
// the whole result area (resetResult), so that nothing of an earlier answer stays beside it; an
// answer is shown only if it is the latest request's and the drawing was not cleared, undone or
// switched to the other mode meanwhile.
"use strict";

(function () {
  const SIZE = { digit: [280, 280], number: [840, 280] };
  const BRUSH = 18;            // pen width in canvas pixels: MNIST strokes are ~2 px of 28
  const LIVE_MS = 150;         // at most one live request per this many ms while drawing

  const $ = (id) => document.getElementById(id);
  const pad = $("pad"), overlay = $("overlay");
  const ctx = pad.getContext("2d"), octx = overlay.getContext("2d");

  // The state the page exposes (window.nndlState) so tests and curious readers can follow it.
  const state = {
    mode: "digit",
    strokes: [],          // [[{x, y}, ...], ...]
    current: null,        // the stroke being drawn
    version: 0,           // bumps at every change of the drawing
    epoch: 0,             // bumps when strokes are taken away (undo, clear, mode): older answers are stale
    requests: 0,          // requests sent so far: only the latest one's answer is shown
    answered: -1,         // the drawing version of the last answer shown
    inFlight: false,
    pending: false,
    lastSent: 0,
    result: null,         // the last JSON answer shown (null when none is)
    error: null,          // the last error shown (JSON body), null when none is
    shown: { digit: null, message: "" },   // what the result area says now
  };
  window.nndlState = state;

  // ----- drawing -----------------------------------------------------------------------------
  function resetCanvas() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, pad.width, pad.height);
    ctx.strokeStyle = "#000";
    ctx.fillStyle = "#000";
    ctx.lineWidth = BRUSH;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
  }

  function drawStroke(points) {
    if (points.length === 1) {           // a dot
      ctx.beginPath();
      ctx.arc(points[0].x, points[0].y, BRUSH / 2, 0, 2 * Math.PI);
      ctx.fill();
      return;
    }
    ctx.beginPath();
    ctx.moveTo(points[0].x, points[0].y);
    for (const p of points.slice(1)) ctx.lineTo(p.x, p.y);
    ctx.stroke();
  }

  function redraw() {
    resetCanvas();
    state.strokes.forEach(drawStroke);
    clearOverlay();
  }

  function clearOverlay() {
    octx.clearRect(0, 0, overlay.width, overlay.height);
  }

  function toCanvas(ev) {
    const r = pad.getBoundingClientRect();
    return { x: (ev.clientX - r.left) * (pad.width / r.width), y: (ev.clientY - r.top) * (pad.height / r.height) };
  }

  pad.addEventListener("pointerdown", (ev) => {
    if (ev.button !== undefined && ev.button > 0) return;
    ev.preventDefault();
    pad.setPointerCapture(ev.pointerId);
    state.current = [toCanvas(ev)];
    state.strokes.push(state.current);
    drawStroke(state.current);
    changed(true);
  });

  pad.addEventListener("pointermove", (ev) => {
    if (!state.current) return;
    ev.preventDefault();
    const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
    for (const e of (events.length ? events : [ev])) {
      const p = toCanvas(e), last = state.current[state.current.length - 1];
      ctx.beginPath();
      ctx.moveTo(last.x, last.y);
      ctx.lineTo(p.x, p.y);
      ctx.stroke();
      state.current.push(p);
    }
    changed(true);
  });

  function endStroke(ev) {
    if (!state.current) return;
    state.current = null;
    changed(false);
  }
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);

  function undo() {
    state.strokes.pop();
    state.epoch += 1;
    redraw();
    changed(false);
  }

  function clearAll() {
    state.strokes = [];
    state.epoch += 1;
    redraw();
    changed(false);
  }

  $("undo").addEventListener("click", undo);
  $("clear").addEventListener("click", clearAll);
  document.addEventListener("keydown", (ev) => {
    if ((ev.ctrlKey || ev.metaKey) && ev.key === "z") { ev.preventDefault(); undo(); }
    if (ev.key === "Escape") clearAll();
  });

  // ----- modes ---------------------------------------------------------------------------------
  function setMode(mode, keepDrawing = false) {
    const [oldWidth] = SIZE[state.mode], kept = keepDrawing ? state.strokes : [];
    state.mode = mode;
    state.epoch += 1;
    const [w, h] = SIZE[mode];
    pad.width = overlay.width = w;
    pad.height = overlay.height = h;
    $("canvas-wrap").classList.toggle("wide", mode === "number");
    $("draw-view").classList.toggle("wide", mode === "number");
    $("mode-digit").classList.toggle("active", mode === "digit");
    $("mode-number").classList.toggle("active", mode === "number");
    $("mode-digit").setAttribute("aria-selected", String(mode === "digit"));
    $("mode-number").setAttribute("aria-selected", String(mode === "number"));
    $("digit-result").classList.toggle("hidden", mode !== "digit");
    $("number-result").classList.toggle("hidden", mode !== "number");
    $("activations-panel").classList.toggle("hidden", mode !== "digit");
    $("hint").textContent = mode === "digit"
      ? "Draw a digit with the mouse, a pen or a finger."
      : "Write a number, digits side by side (e.g. 504192).";
    const dx = (w - oldWidth) / 2;        // a kept drawing moves to the middle of the new canvas
    state.strokes = kept.map((stroke) => stroke.map((p) => ({ x: p.x + dx, y: p.y })));
    redraw();
    changed(false);
  }
  $("mode-digit").addEventListener("click", () => setMode("digit"));
  $("mode-number").addEventListener("click", () => setMode("number"));
  $("try-number").addEventListener("click", () => setMode("number", true));

  // ----- talking to the network -------------------------------------------------------------------
  function changed(live) {
    state.version += 1;
    if (!state.strokes.length) {
      showEmpty();
      state.answered = state.version;
      return;
    }
    if (live && performance.now() - state.lastSent < LIVE_MS) {
      return;                     // drawing on: the next move or the pen lifting will ask
    }
    ask();
  }

  function ask() {
    if (state.inFlight) { state.pending = true; return; }
    if (!state.strokes.length) return;
    state.inFlight = true;
    state.pending = false;
    state.lastSent = performance.now();
    state.requests += 1;
    const request = state.requests, version = state.version, epoch = state.epoch, mode = state.mode;
    const url = mode === "digit" ? "/api/predict?activations=true" : "/api/read";
    pad.toBlob(async (blob) => {
      let ok = false, body;
      try {
        const res = await fetch(url, { method: "POST", headers: { "Content-Type": "image/png" }, body: blob });
        ok = res.ok;
        body = await res.json().catch(() => ({ error: "BadResponse", detail: `HTTP ${res.status}, not JSON` }));
      } catch (err) {
        body = { error: "NetworkError", detail: String(err) };
      }
      if (!body || typeof body !== "object") { ok = false; body = { error: "BadResponse", detail: "an empty answer" }; }
      try {
        // Stale: a later request was sent, or strokes were taken away, or the mode changed.
        if (request === state.requests && epoch === state.epoch && mode === state.mode) {
          if (ok) show(mode, body); else showError(mode, body);
          state.answered = Math.max(state.answered, version);
        }
      } finally {
        state.inFlight = false;
        const again = state.pending || state.answered < state.version;
        state.pending = false;
        if (again && state.strokes.length) ask();
      }
    }, "image/png");
  }

  // One place that empties the result area: every answer starts from here.
  function resetResult() {
    state.result = null;
    state.error = null;
    state.shown = { digit: null, message: "" };
    $("digit-result").removeAttribute("data-reason");
    $("digit").textContent = "–";
    $("digit").classList.remove("hidden");
    setMessage($("message"), "", null);
    $("marks-hint").classList.add("hidden");
    $("preprocessed").removeAttribute("src");
    $("activations").innerHTML = "";
    renderBars(new Array(10).fill(0), -1);
    $("number").textContent = "–";
    $("number").classList.remove("hidden");
    setMessage($("number-message"), "", null);
    $("digits").innerHTML = "";
    clearOverlay();
    $("error").textContent = "";
    $("error").classList.add("hidden");
  }

  function setMessage(el, text, reason) {
    el.textContent = text;
    el.className = "message" + (reason ? " " + reason : "") + (text ? "" : " hidden");
  }

  // A message in place of the answer ("unsure: 4 or 9", "No digit yet ..."): the big digit goes.
  function sayInstead(mode, text, reason) {
    const digitMode = mode === "digit";
    $(digitMode ? "digit" : "number").classList.add("hidden");
    setMessage($(digitMode ? "message" : "number-message"), text, reason);
    if (digitMode) $("digit-result").dataset.reason = reason;
    state.shown = { digit: null, message: text };
  }

  function show(mode, body) {
    resetResult();
    state.result = body;
    if (mode === "digit") showDigit(body); else showNumber(body);
  }

  function showError(mode, body) {
    resetResult();
    state.error = body;
    if (body && (body.reason === "blank" || body.error === "NoDigitError")) {
      sayInstead(mode, "No digit yet: draw a little more.", "blank");
      return;
    }
    $("error").textContent = `${body.error}: ${body.detail}`;
    $("error").classList.remove("hidden");
  }

  function showEmpty() {
    resetResult();
  }

  function showDigit(body) {
    const read = body.digit !== null && body.digit !== undefined;
    if (read) {
      $("digit").textContent = String(body.digit);
      state.shown = { digit: body.digit, message: String(body.digit) };
    } else {
      sayInstead("digit", body.message || "no reading", body.reason || "unsure");
    }
    if ((body.marks || 0) >= 2) $("marks-hint").classList.remove("hidden");
    $("preprocessed").src = "data:image/png;base64," + body.preprocessed;
    renderBars(body.probabilities, read ? body.digit : -1, read ? [] : (body.candidates || []));
    renderActivations(body.activations || []);
  }

  // One bar per digit; ``top``: the digit read (-1: none), ``candidates``: those named when unsure.
  function renderBars(probabilities, top, candidates = []) {
    const list = $("bars");
    if (list.children.length !== probabilities.length) {
      list.innerHTML = "";
      probabilities.forEach((_, d) => {
        const li = document.createElement("li");
        li.innerHTML = `<span class="label">${d}</span><span class="track"><span class="fill"></span></span>` +
          `<span class="value"></span>`;
        list.appendChild(li);
      });
    }
    probabilities.forEach((p, d) => {
      const li = list.children[d];
      li.classList.toggle("top", d === top);
      li.classList.toggle("candidate", candidates.includes(d));
      li.querySelector(".fill").style.width = (100 * p).toFixed(1) + "%";
      li.querySelector(".value").textContent = (100 * p).toFixed(1) + "%";
    });
  }

  function showNumber(body) {
    $("number").textContent = body.number || "–";
    state.shown = { digit: null, message: body.number || "" };
    const list = $("digits");
    octx.lineWidth = 2;
    octx.font = "16px system-ui, sans-serif";
    body.digits.forEach((d) => {
      const li = document.createElement("li");
      li.innerHTML = `<b>${d.digit}</b>${(100 * d.confidence).toFixed(0)}%`;
      list.appendChild(li);
      const [x0, y0, x1, y1] = d.box;
      octx.strokeStyle = "rgba(47, 111, 222, 0.8)";
      octx.strokeRect(x0 - 2, y0 - 2, x1 - x0 + 4, y1 - y0 + 4);
      octx.fillStyle = "rgba(47, 111, 222, 0.95)";
      octx.fillText(String(d.digit), x0, Math.max(14, y0 - 6));
    });
  }

  // ----- the activations panel --------------------------------------------------------------------
  function heat(v) {                       // v in [0, 1] → an "inferno"-like colour
    const stops = [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]];
    const t = Math.min(Math.max(v, 0), 1) * (stops.length - 1), i = Math.min(Math.floor(t), stops.length - 2);
    const f = t - i, a = stops[i], b = stops[i + 1];
    return [0, 1, 2].map((k) => Math.round(a[k] + f * (b[k] - a[k])));
  }

  function paint(canvas, values, w, h, offset, scaleMax) {
    const c = canvas.getContext("2d"), img = c.createImageData(w, h);
    for (let i = 0; i < w * h; i++) {
      const v = i < values.length - offset ? values[offset + i] / scaleMax : 0;
      const [r, g, b] = heat(v);
      img.data.set([r, g, b, 255], 4 * i);
    }
    return img;
  }

  function renderActivations(layers) {
    const root = $("activations");
    root.innerHTML = "";
    for (const layer of layers) {
      const box = document.createElement("div");
      box.className = "layer";
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = `layer ${layer.layer}: ${layer.kind}${layer.activation ? " " + layer.activation : ""}` +
        ` [${layer.shape.join("×")}]`;
      const vals = layer.values;
      const max = Math.max(1e-6, ...vals.map(Math.abs));
      const canvas = document.createElement("canvas");
      if (layer.shape.length === 3) {               // feature maps: one tile per map
        const [n, h, w] = layer.shape, cols = Math.ceil(Math.sqrt(n)), rows = Math.ceil(n / cols);
        canvas.width = cols * (w + 1);
        canvas.height = rows * (h + 1);
        const c = canvas.getContext("2d");
        for (let m = 0; m < n; m++) {
          c.putImageData(paint(canvas, vals, w, h, m * h * w, max), (m % cols) * (w + 1), Math.floor(m / cols) * (h + 1));
        }
        canvas.style.width = Math.min(360, canvas.width * 3) + "px";
      } else {                                      // a dense layer: a grid of neurons
        const n = vals.length, cols = Math.ceil(Math.sqrt(n)), rows = Math.ceil(n / cols);
        canvas.width = cols;
        canvas.height = rows;
        canvas.getContext("2d").putImageData(paint(canvas, vals, cols, rows, 0, max), 0, 0);
        canvas.style.width = Math.min(240, cols * 18) + "px";
      }
      canvas.title = `max activation ${max.toFixed(3)}`;
      box.appendChild(canvas);
      box.appendChild(name);
      root.appendChild(box);
    }
  }

  // ----- start -------------------------------------------------------------------------------------
  fetch("/api/health").then((r) => r.json()).then((h) => {
    const m = h.model || {};
    $("model-name").textContent = `model: ${m.name || "?"} · ${m.layers ? m.layers.length : "?"} layers · ` +
      `${m.n_params ? m.n_params.toLocaleString() : "?"} parameters`;
  }).catch(() => { $("model-name").textContent = "model: unreachable"; });

  resetCanvas();
  resetResult();
})();
