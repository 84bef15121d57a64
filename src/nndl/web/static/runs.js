// nndl web app, the Runs tab (nndl serve --runs DIR): the training runs under DIR, and their curves
// per epoch on shared charts (accuracy, cost, η), redrawn while the runs train.
// It polls: /api/runs every POLL_MS for the list (status, epochs, speed, time left), then each ticked
// run's /api/runs/{id}/metrics?since=k for the rows it does not hold yet. Polling rather than
// server-sent events: one request per run and interval, nothing held open, and it works the same
// behind any proxy. A run that starts while the page watches is ticked at once.
// The URL's hash opens the tab with runs ticked: #runs=reproduce/ch1-30/seed0,reproduce/ch3-ce-30/seed0
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const COLORS = ["#2f6fde", "#d1495b", "#2a9d4b", "#e09f1f", "#7b4fc9", "#17a2b8", "#8c564b", "#e377c2",
    "#555b6e", "#bcbd22"];
  const hashParams = new URLSearchParams(location.hash.slice(1));

  // The state the page exposes (window.nndlRuns), for tests and curious readers.
  const state = {
    folder: null,         // the folder served, or null when the server has none (no --runs)
    runs: [],             // the list's rows, as /api/runs gives them
    selected: [],         // the ticked run ids, in the order ticked (it gives their colours)
    unticked: new Set(),  // runs the reader unticked: a running run is not ticked again
    seen: new Set(),      // ids listed before: only runs new since then are ticked automatically
    rows: {},             // id -> the rows held, in epoch order
    polls: 0,             // completed polls
    pollMs: Number(hashParams.get("poll")) || 2000,
    active: false,        // is the tab shown
    error: null,
  };
  window.nndlRuns = state;
  let timer = null, first = true, inFlight = false, again = false;

  // ----- tabs --------------------------------------------------------------------------------------
  function showTab(name) {
    state.active = name === "runs";
    $("draw-view").classList.toggle("hidden", state.active);
    $("runs-view").classList.toggle("hidden", !state.active);
    for (const [id, on] of [["tab-draw", !state.active], ["tab-runs", state.active]]) {
      $(id).classList.toggle("active", on);
      $(id).setAttribute("aria-selected", String(on));
    }
    if (state.active) poll(); else clearTimeout(timer);
  }
  $("tab-draw").addEventListener("click", () => showTab("draw"));
  $("tab-runs").addEventListener("click", () => showTab("runs"));

  // ----- talking to the server ----------------------------------------------------------------------
  async function getJSON(url) {
    const res = await fetch(url, { cache: "no-store" });
    const body = await res.json().catch(() => ({ error: "BadResponse", detail: `HTTP ${res.status}` }));
    if (!res.ok) throw Object.assign(new Error(body.detail || res.status), { body, status: res.status });
    return body;
  }

  async function poll() {
    clearTimeout(timer);
    if (inFlight) { again = true; return; }   // one poll at a time: rows are appended once
    inFlight = true;
    try {
      const list = await getJSON("/api/runs");
      state.folder = list.folder;
      state.runs = list.runs;
      state.error = null;
      const ids = new Set(list.runs.map((r) => r.id));
      if (first) {
        for (const id of (hashParams.get("runs") || "").split(",")) if (ids.has(id)) tick(id, true);
      }
      for (const run of list.runs) {      // a run that is running, new, or running at the first look: ticked
        if (run.status === "running" && (first || !state.seen.has(run.id)) && !state.unticked.has(run.id)) {
          tick(run.id, true);
        }
        state.seen.add(run.id);
      }
      state.selected = state.selected.filter((id) => ids.has(id));
      first = false;
      await Promise.all(state.selected.map(fetchRows));
    } catch (err) {
      state.error = err.body || { error: "NetworkError", detail: String(err) };
    }
    inFlight = false;
    state.polls += 1;
    render();
    if (again) { again = false; poll(); } else if (state.active && state.folder !== null) timer = setTimeout(poll, state.pollMs);
  }

  // The rows of one run that the page does not hold yet (all of them if the file was rewritten).
  async function fetchRows(id) {
    const held = state.rows[id] || [];
    const run = state.runs.find((r) => r.id === id);
    if (held.length && run && run.status !== "running" && held.length === run.epochs_done) return;
    const url = `/api/runs/${id.split("/").map(encodeURIComponent).join("/")}/metrics`;
    const body = await getJSON(`${url}?since=${held.length}`);
    state.rows[id] = body.total < held.length ? (await getJSON(url)).rows : held.concat(body.rows);
    const at = state.runs.findIndex((r) => r.id === id);   // its summary as of these rows: the list agrees
    if (at >= 0) state.runs[at] = body.run;
  }

  function tick(id, on) {
    const at = state.selected.indexOf(id);
    if (on && at < 0) { state.selected.push(id); state.unticked.delete(id); }
    if (!on && at >= 0) { state.selected.splice(at, 1); state.unticked.add(id); }
  }

  // ----- the list ------------------------------------------------------------------------------------
  const pct = (v) => (v === null || v === undefined ? "–" : (100 * v).toFixed(2) + "%");
  function duration(s) {
    if (s === null || s === undefined) return "–";
    if (s < 90) return `${Math.round(s)} s`;
    if (s < 5400) return `${Math.round(s / 60)} min`;
    return `${(s / 3600).toFixed(1)} h`;
  }
  const colorOf = (id) => COLORS[state.selected.indexOf(id) % COLORS.length];

  function renderList() {
    $("runs-folder").textContent = state.folder === null
      ? (state.error ? `${state.error.detail}` : "…") : `${state.runs.length} runs under ${state.folder}`;
    const filter = $("runs-filter").value.trim().toLowerCase();
    const body = $("runs-table").tBodies[0];
    body.innerHTML = "";
    for (const run of state.runs) {
      if (filter && !`${run.id} ${run.status}`.toLowerCase().includes(filter)) continue;
      const on = state.selected.includes(run.id);
      const tr = document.createElement("tr");
      tr.dataset.id = run.id;
      tr.dataset.status = run.status;
      tr.classList.toggle("selected", on);
      const cells = [
        "", run.id, "", `${run.epochs_done}${run.epochs_planned ? " / " + run.epochs_planned : ""}`,
        pct(run.best_evaluation_accuracy), run.seconds_per_epoch ? run.seconds_per_epoch.toFixed(2) : "–",
        run.status === "running" ? duration(run.seconds_left) : "–",
      ];
      cells.forEach((text, k) => {
        const td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      });
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = on;
      box.setAttribute("aria-label", `draw ${run.id}`);
      if (on) box.style.accentColor = colorOf(run.id);    // the tick in the colour of the run's curves
      tr.cells[0].appendChild(box);
      tr.cells[1].className = "id";
      const badge = document.createElement("span");
      badge.className = `status ${run.status}`;
      badge.textContent = run.status;
      tr.cells[2].appendChild(badge);
      tr.title = Object.entries(run.settings || {}).map(([k, v]) => `${k} ${JSON.stringify(v)}`).join(", ");
      tr.addEventListener("click", () => { tick(run.id, !on); render(); poll(); });
      body.appendChild(tr);
    }
  }
  $("runs-filter").addEventListener("input", renderList);

  // A line per running run that is ticked: its epoch, speed and time left.
  function renderLive() {
    const live = $("runs-live");
    live.innerHTML = "";
    for (const run of state.runs.filter((r) => r.status === "running" && state.selected.includes(r.id))) {
      const p = document.createElement("p");
      p.className = "live";
      p.dataset.id = run.id;
      const of = run.epochs_planned ? ` of ${run.epochs_planned}` : "";
      const speed = run.seconds_per_epoch ? ` · ${run.seconds_per_epoch.toFixed(2)} s per epoch` : "";
      const left = run.seconds_left !== null && run.seconds_left !== undefined ? ` · about ${duration(run.seconds_left)} left` : "";
      p.textContent = `▶ ${run.id}: ${run.epochs_done}${of} epochs done${speed}${left}`;
      live.appendChild(p);
    }
  }

  // ----- the charts ---------------------------------------------------------------------------------
  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function niceTicks(lo, hi, n) {
    const step0 = (hi - lo) / Math.max(1, n), mag = Math.pow(10, Math.floor(Math.log10(step0 || 1)));
    const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= step0) || step0;
    const ticks = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(+t.toFixed(12));
    return ticks;
  }

  // series: [{id, key, dash, points: [[epoch, value], ...]}]; lines: [{y, label}] (the book's numbers)
  function drawChart(figure, series, lines, format) {
    const svg = figure.querySelector("svg");
    const [, , W, H] = svg.getAttribute("viewBox").split(" ").map(Number);
    const L = 56, R = 12, T = 10, B = 26;
    svg.innerHTML = "";
    const values = series.flatMap((s) => s.points.map((p) => p[1])).concat(lines.map((l) => l.y));
    figure.classList.toggle("hidden", !series.some((s) => s.points.length));
    if (!values.length) return;
    let lo = Math.min(...values), hi = Math.max(...values);
    if (hi - lo < 1e-9) { lo -= 0.5 * Math.abs(lo || 1) * 0.01; hi += 0.5 * Math.abs(hi || 1) * 0.01; }
    const pad = (hi - lo) * 0.05;
    lo -= pad; hi += pad;
    const xMax = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[0])));
    const x = (e) => L + (W - L - R) * e / xMax, y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
    for (const t of niceTicks(lo, hi, 5)) {
      el("line", { class: "grid", x1: L, x2: W - R, y1: y(t), y2: y(t) }, svg);
      el("text", { x: L - 6, y: y(t) + 4, "text-anchor": "end" }, svg).textContent = format(t);
    }
    for (const t of niceTicks(0, xMax, 8).filter((t) => Number.isInteger(t))) {
      el("text", { x: x(t), y: H - 8, "text-anchor": "middle" }, svg).textContent = String(t);
    }
    el("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }, svg);
    el("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }, svg);
    for (const line of lines) {               // the book's number: a dotted line in the run's colour
      const book = el("line", { class: "book", x1: L, x2: W - R, y1: y(line.y), y2: y(line.y), stroke: colorOf(line.id) }, svg);
      el("title", {}, book).textContent = line.label;
    }
    for (const s of series.filter((s) => s.points.length)) {
      const points = s.points.map(([e, v]) => `${x(e).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
      const poly = el("polyline", { points, fill: "none", stroke: colorOf(s.id), "stroke-width": 1.8,
        "stroke-dasharray": s.dash, "data-run": s.id, "data-key": s.key, "data-n": s.points.length }, svg);
      el("title", {}, poly).textContent = `${s.id}: ${s.key}`;
      if (s.points.length === 1) {           // one epoch so far: a dot, a line needs two
        const [e, v] = s.points[0];
        el("circle", { cx: x(e), cy: y(v), r: 3, fill: colorOf(s.id) }, svg);
      }
    }
  }

  function seriesOf(keys) {
    return state.selected.flatMap((id) => keys.map(([key, dash]) => ({
      id, key, dash, points: (state.rows[id] || []).filter((r) => typeof r[key] === "number").map((r) => [r.epoch, r[key]]),
    })));
  }

  function renderCharts() {
    const books = new Map();                  // one line per recipe, in the colour of its first run ticked
    for (const id of state.selected) {
      const run = state.runs.find((r) => r.id === id);
      if (run && run.book && !books.has(run.book.recipe)) {
        books.set(run.book.recipe, { id, y: run.book.book, label: `the book, ${run.book.recipe}: ${pct(run.book.book)}` });
      }
    }
    drawChart($("chart-accuracy"), seriesOf([["evaluation_accuracy", ""], ["training_accuracy", "6 4"],
      ["test_accuracy", "2 3"]]), [...books.values()], (v) => (100 * v).toFixed(1) + "%");
    drawChart($("chart-cost"), seriesOf([["training_cost", ""], ["evaluation_cost", "6 4"]]), [], (v) => v.toPrecision(3));
    drawChart($("chart-eta"), seriesOf([["eta", ""]]), [], (v) => String(+v.toPrecision(3)));
    const legend = $("runs-legend");
    legend.innerHTML = "";
    for (const id of state.selected) {
      const li = document.createElement("li");
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = colorOf(id);
      const run = state.runs.find((r) => r.id === id);
      const book = run && run.book ? ` (book ${pct(run.book.book)}, ours best ${pct(run.best_evaluation_accuracy)})` : "";
      li.append(sw, ` ${id}${book}`);
      legend.appendChild(li);
    }
    $("runs-hint").classList.toggle("hidden", state.selected.length > 0);
  }

  function render() {
    renderList();
    renderLive();
    renderCharts();
  }

  if (hashParams.has("runs")) showTab("runs");
})();
