// Shipyard UI: times in the browser's zone, metric charts (uPlot), keyboard rows, compare toggles.
// Loaded as a file (the pages' CSP allows no inline script); everything user-supplied reaches it as
// text or JSON, never as markup.
"use strict";

(function () {
  const params = new URLSearchParams(location.search);

  function localTimes(root) {
    for (const el of root.querySelectorAll("time[datetime]")) {
      if (el.dataset.local) continue;
      const when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when)) {
        el.title = el.textContent;
        el.textContent = when.toLocaleString();
        el.dataset.local = "1";
      }
    }
  }

  // ---------------------------------------------------------------- charts
  const chartOptions = {
    x: params.get("x") === "time" ? "time" : "step",
    log: params.get("log") === "1",
    smooth: Math.min(Math.max(parseFloat(params.get("smooth") || "0") || 0, 0), 0.99),
  };
  const charts = [];
  const palette = ["#2f6fdf", "#e4572e", "#29a35a", "#a05cc9", "#d8a106", "#17a2b8", "#e83e8c", "#6c757d"];

  function smooth(values, weight) {
    if (!weight) return values;
    const out = new Array(values.length);
    let last = null;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === null) { out[i] = null; continue; }
      last = last === null ? v : last * weight + v * (1 - weight);
      out[i] = last;
    }
    return out;
  }

  function positiveOnly(values) {
    return values.map((v) => (v !== null && v > 0 ? v : null));
  }

  function draw(fig) {
    const data = fig._data;
    if (!data || typeof uPlot !== "function") return;
    const axis = data[chartOptions.x];
    if (!axis && fig.hasAttribute("data-compare") && !(fig._asked || {})[chartOptions.x]) {
      load(fig);  // an axis not fetched yet
      return;
    }
    if (!axis) return;
    const xs = axis[0];
    let ys = axis.slice(1).map((s) => smooth(s, chartOptions.smooth));
    if (chartOptions.log) ys = ys.map(positiveOnly);
    const names = fig._names || ["value"];
    const marks = data.marks || [];  // per series: "line" (default), "points" or "steps"
    const series = [{ label: chartOptions.x }];
    ys.forEach((_, i) => series.push({
      label: names[i] || String(i + 1),
      stroke: palette[i % palette.length],
      width: names.length > 50 ? 0.75 : 1.5,
      spanGaps: true,
      points: { show: marks[i] === "points" || xs.length <= 60, size: marks[i] === "points" ? 4 : 5 },
      ...(marks[i] === "points" ? { paths: () => null } : {}),
      ...(marks[i] === "steps" ? { paths: uPlot.paths.stepped({ align: 1 }) } : {}),
    }));
    const width = Math.max(fig.clientWidth - 8, 280);
    const opts = {
      width: width,
      height: fig.classList.contains("wide") ? 320 : 220,
      series: series,
      scales: { x: { time: chartOptions.x === "time" }, y: { distr: chartOptions.log ? 3 : 1 } },
      legend: { show: names.length <= 20 },
      cursor: { drag: { x: true, y: false } },
    };
    if (fig._plot) fig._plot.destroy();
    const holder = fig.querySelector(".plot") || fig.appendChild(document.createElement("div"));
    holder.className = "plot";
    fig._plot = new uPlot(opts, [xs, ...ys], holder);
    const note = fig.querySelector(".thinned");
    if (data.total && data.total > xs.length && !note) {
      const p = document.createElement("p");
      p.className = "thinned muted";
      p.textContent = `${xs.length.toLocaleString()} of ${data.total.toLocaleString()} points (lowest and highest of each span kept)`;
      fig.appendChild(p);
    }
  }

  // A binary series answer (run_pages._binary_columns): uint32 n, n bytes of JSON, then float64 columns
  // of meta.points values each; NaN is a gap, null to uPlot.
  function columns(buffer) {
    const n = new DataView(buffer).getUint32(0, true);
    const meta = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, n)));
    const values = new Float64Array(buffer, 4 + n);
    const out = [];
    for (let start = 0; meta.points && start < values.length; start += meta.points) {
      const column = new Array(meta.points);
      for (let i = 0; i < meta.points; i++) {
        const v = values[start + i];
        column[i] = Number.isNaN(v) ? null : v;
      }
      out.push(column);
    }
    meta[meta.axis] = out;
    return meta;
  }

  async function load(fig) {
    if (fig._loading) return;
    fig._loading = true;
    try {
      // A compare's series come one axis at a time (each is megabytes at 500 runs).
      fig._asked = Object.assign(fig._asked || {}, { [chartOptions.x]: true });
      const url = fig.hasAttribute("data-compare")
        ? `${fig.dataset.seriesUrl}&axis=${encodeURIComponent(chartOptions.x)}`
        : fig.dataset.seriesUrl;
      const answer = await fetch(url, { credentials: "same-origin" });
      if (answer.redirected || answer.status === 401) { location.reload(); return; }
      if (!answer.ok) throw new Error(`${answer.status}`);
      const binary = (answer.headers.get("content-type") || "").startsWith("application/vnd.shipyard.series");
      const data = binary ? columns(await answer.arrayBuffer()) : await answer.json();
      fig._data = Object.assign(fig._data || {}, data);
      if (data.runs) {
        const labels = JSON.parse(document.getElementById("run-names").textContent);
        fig._names = data.runs.map((r) => labels[r] || r);
      } else if (data.names) {
        fig._names = data.names;
      } else {
        fig._names = [data.key];
      }
      fig._loading = false;
      draw(fig);
      if (!charts.includes(fig)) charts.push(fig);
    } catch (err) {
      const p = document.createElement("p");
      p.className = "error-message";
      p.textContent = `could not load this chart (${err.message})`;
      fig.appendChild(p);
    }
  }

  function startCharts(root) {
    const figs = [...root.querySelectorAll("figure.chart[data-series-url]")];
    if (!figs.length) return;
    const seen = new IntersectionObserver((entries) => {
      for (const e of entries) {
        if (e.isIntersecting) { seen.unobserve(e.target); load(e.target); }
      }
    }, { rootMargin: "200px" });
    figs.forEach((f) => seen.observe(f));
  }

  function bindControls() {
    for (const el of document.querySelectorAll("[data-chart-option]")) {
      const name = el.dataset.chartOption;
      if (name === "x") el.value = chartOptions.x;
      else if (name === "log") el.checked = chartOptions.log;
      else if (name === "smooth") el.value = String(chartOptions.smooth);
      el.addEventListener("input", () => {
        if (name === "x") chartOptions.x = el.value;
        else if (name === "log") chartOptions.log = el.checked;
        else if (name === "smooth") chartOptions.smooth = parseFloat(el.value) || 0;
        const url = new URL(location.href);
        url.searchParams.set("x", chartOptions.x);
        url.searchParams.set("log", chartOptions.log ? "1" : "0");
        url.searchParams.set("smooth", String(chartOptions.smooth));
        history.replaceState(null, "", url);
        charts.forEach(draw);
      });
    }
  }

  // ---------------------------------------------------------------- runs table keyboard
  function rows(table) {
    return [...table.querySelectorAll("tbody tr[tabindex]")];
  }

  document.addEventListener("keydown", (event) => {
    const row = event.target.closest && event.target.closest("tr[tabindex]");
    if (!row || event.target.tagName === "INPUT" && event.target.type !== "checkbox") return;
    const table = row.closest("table");
    const all = rows(table);
    const at = all.indexOf(row);
    let next = null;
    if (event.key === "ArrowDown" || event.key === "j") next = all[at + 1];
    else if (event.key === "ArrowUp" || event.key === "k") next = all[at - 1];
    else if (event.key === "Home") next = all[0];
    else if (event.key === "End") next = all[all.length - 1];
    else if (event.key === "Enter" && row.dataset.href && event.target === row) {
      if (event.ctrlKey || event.metaKey) window.open(row.dataset.href, "_blank");
      else location.href = row.dataset.href;
      event.preventDefault();
      return;
    } else if ((event.key === " " || event.key === "x") && event.target === row) {
      const box = row.querySelector("input[type=checkbox]");
      if (box) { box.checked = !box.checked; row.classList.toggle("selected", box.checked); }
      event.preventDefault();
      return;
    }
    if (next) { next.focus(); event.preventDefault(); }
  });

  document.addEventListener("change", (event) => {
    const box = event.target;
    if (box.matches && box.matches("tr input[type=checkbox]")) {
      box.closest("tr").classList.toggle("selected", box.checked);
    }
    if (box.id === "only-differing") {
      document.getElementById("compare-table").classList.toggle("only-differing", box.checked);
    }
  });

  // ---------------------------------------------------------------- pipeline DAG: live status, step links
  function setStepClass(el, cls) {
    for (const c of [...el.classList]) if (c.startsWith("step-") && c !== "step-group") el.classList.remove(c);
    el.classList.add(`step-${cls}`);
  }

  function pollDag(panel) {
    let since = panel.dataset.since || "0";
    const every = 1000 * (parseFloat(panel.dataset.pollSeconds) || 2);
    async function tick() {
      try {
        const answer = await fetch(`${panel.dataset.pollUrl}?since=${encodeURIComponent(since)}`, { credentials: "same-origin" });
        if (answer.redirected || answer.status === 401) { location.reload(); return; }
        if (!answer.ok) throw new Error(String(answer.status));
        const change = await answer.json();
        since = String(change.since);
        for (const [key, cls] of Object.entries(change.steps)) {
          const node = panel.querySelector(`g[data-step="${CSS.escape(key)}"]`);
          if (node) setStepClass(node, cls);
          const cell = document.querySelector(`[data-step-status="${CSS.escape(key)}"]`);
          if (cell) {
            cell.textContent = cls === "cached" ? "CACHED" : cls.toUpperCase();
            cell.className = `status status-${cls}`;
          }
        }
        const status = document.getElementById("run-status");
        if (status) { status.textContent = change.status; status.className = `status status-${change.status.toLowerCase()}`; }
        if (change.done) { panel.dataset.done = "1"; return; }
      } catch (err) {
        panel.dataset.pollError = err.message;
      }
      setTimeout(tick, every);
    }
    setTimeout(tick, every);
  }

  document.addEventListener("click", (event) => {
    const node = event.target.closest && event.target.closest("#dag g[data-step]:not(.step-group)");
    if (!node) return;
    const runPath = location.pathname.replace(/\/$/, "");
    location.href = `${runPath}/steps/${encodeURIComponent(node.dataset.step)}`;
  });

  function start(root) {
    localTimes(root);
    startCharts(root);
  }

  document.addEventListener("DOMContentLoaded", () => {
    start(document);
    bindControls();
    const dag = document.querySelector("#dag[data-poll-url]");
    if (dag) pollDag(dag);
    document.body.addEventListener("htmx:afterSwap", (e) => start(e.target.parentElement || document));
  });
})();
