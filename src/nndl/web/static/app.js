// nndl web app: a drawing canvas whose strokes are sent to the network as a PNG.
// Digit mode asks /api/predict (with the hidden layers' activations); number mode asks /api/read.
// Strokes are kept as lists of points so that "undo" can redraw all but the last one.
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
    answered: -1,         // the drawing version of the last answer shown
    inFlight: false,
    pending: false,
    lastSent: 0,
    result: null,         // the last JSON answer
    error: null,
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
    redraw();
    changed(false);
  }

  function clearAll() {
    state.strokes = [];
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
  function setMode(mode) {
    state.mode = mode;
    const [w, h] = SIZE[mode];
    pad.width = overlay.width = w;
    pad.height = overlay.height = h;
    $("canvas-wrap").classList.toggle("wide", mode === "number");
    document.querySelector("main").classList.toggle("wide", mode === "number");
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
    state.strokes = [];
    redraw();
    changed(false);
  }
  $("mode-digit").addEventListener("click", () => setMode("digit"));
  $("mode-number").addEventListener("click", () => setMode("number"));

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
    state.lastSent = performance.now();
    const version = state.version, mode = state.mode;
    const url = mode === "digit" ? "/api/predict?activations=true" : "/api/read";
    pad.toBlob(async (blob) => {
      try {
        const res = await fetch(url, { method: "POST", headers: { "Content-Type": "image/png" }, body: blob });
        const body = await res.json();
        if (mode === state.mode && version <= state.version) {
          if (res.ok) show(mode, body); else showError(body);
          state.answered = Math.max(state.answered, version);
        }
      } catch (err) {
        showError({ error: "NetworkError", detail: String(err) });
      } finally {
        state.inFlight = false;
        if (state.pending || state.answered < state.version) {
          state.pending = false;
          if (state.strokes.length && state.answered < state.version) ask();
        }
      }
    }, "image/png");
  }

  function show(mode, body) {
    state.result = body;
    state.error = null;
    $("error").classList.add("hidden");
    if (mode === "digit") showDigit(body); else showNumber(body);
  }

  function showError(body) {
    state.error = body;
    const blank = body && body.error === "NoDigitError";
    $("error").textContent = blank ? "No digit yet: draw a little more." : `${body.error}: ${body.detail}`;
    $("error").classList.remove("hidden");
  }

  function showEmpty() {
    state.result = null;
    $("digit").textContent = "–";
    $("number").textContent = "–";
    $("digits").innerHTML = "";
    $("preprocessed").removeAttribute("src");
    $("activations").innerHTML = "";
    $("error").classList.add("hidden");
    renderBars(new Array(10).fill(0), -1);
  }

  function showDigit(body) {
    $("digit").textContent = String(body.digit);
    $("preprocessed").src = "data:image/png;base64," + body.preprocessed;
    renderBars(body.probabilities, body.digit);
    renderActivations(body.activations || []);
  }

  function renderBars(probabilities, top) {
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
      li.querySelector(".fill").style.width = (100 * p).toFixed(1) + "%";
      li.querySelector(".value").textContent = (100 * p).toFixed(1) + "%";
    });
  }

  function showNumber(body) {
    $("number").textContent = body.number || "–";
    const list = $("digits");
    list.innerHTML = "";
    clearOverlay();
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
  renderBars(new Array(10).fill(0), -1);
})();
