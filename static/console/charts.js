// Dashboard charts with uPlot. Every <div data-chart="throughput|failure-rate"
// data-chart-source="ID"> draws the numbers of the <script type="application/json" id="ID">
// block the server rendered with json_script ({t, step, succeeded, failed, failure_rate}).
// No inline script: the same numbers are in the page's tables for readers without JavaScript.
// Charts are (re)built on load, after every htmx swap, and when the system theme changes.
(function () {
  "use strict";
  const charts = new Map(); // element -> {plot, observer}
  const HEIGHTS = { throughput: 170, "failure-rate": 110 };

  function color(name, fallback) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function readData(id) {
    const el = id && document.getElementById(id);
    if (!el) return null;
    try {
      return JSON.parse(el.textContent);
    } catch (err) {
      return null;
    }
  }

  function count(v) {
    if (v == null) return "–";
    return Math.abs(v) >= 1000 ? (v / 1000).toFixed(v >= 10000 ? 0 : 1) + "k" : String(v);
  }

  function percent(v) {
    return v == null ? "–" : v.toFixed(v < 10 ? 1 : 0) + " %";
  }

  function options(kind, data, width) {
    const muted = color("--muted", "#6b7077");
    const line = color("--line", "#dcdfe4");
    const axis = {
      stroke: muted,
      grid: { stroke: line, width: 1 },
      ticks: { stroke: line, width: 1 },
    };
    const yAxis = Object.assign({}, axis, {
      size: 52,
      values: function (u, splits) { return splits.map(kind === "failure-rate" ? percent : count); },
    });
    let series;
    if (kind === "failure-rate") {
      series = [
        {},
        { label: "failure rate", stroke: color("--fail", "#b42318"), width: 1.5,
          points: { show: false }, spanGaps: false, value: function (u, v) { return percent(v); } },
      ];
    } else {
      series = [
        {},
        { label: "succeeded", stroke: color("--ok", "#1a7f37"), fill: color("--ok-bg", "#dcf5e3"),
          width: 1.5, points: { show: false }, value: function (u, v) { return count(v); } },
        { label: "failed", stroke: color("--fail", "#b42318"), fill: color("--fail-bg", "#fde3e1"),
          width: 1.5, points: { show: false }, value: function (u, v) { return count(v); } },
      ];
    }
    const first = data.t.length ? data.t[0] : 0;
    const last = data.t.length ? data.t[data.t.length - 1] : 1;
    return {
      width: width,
      height: HEIGHTS[kind] || 150,
      series: series,
      axes: [axis, yAxis],
      scales: {
        x: { time: true, range: function () { return [first, last]; } },
        y: {
          range: function (u, min, max) {
            return kind === "failure-rate" ? [0, Math.max(max || 0, 5)] : [0, Math.max(max || 0, 1)];
          },
        },
      },
      legend: { show: true },
      cursor: { points: { show: false } },
    };
  }

  function build(el) {
    const kind = el.dataset.chart;
    const data = readData(el.dataset.chartSource);
    if (!data || !Array.isArray(data.t)) return;
    const ys = kind === "failure-rate" ? [data.failure_rate] : [data.succeeded, data.failed];
    const width = Math.max(el.clientWidth, 200);
    el.textContent = "";
    const plot = new uPlot(options(kind, data, width), [data.t].concat(ys), el);
    let observer = null;
    if (typeof ResizeObserver !== "undefined") {
      observer = new ResizeObserver(function () {
        const w = Math.max(el.clientWidth, 200);
        if (Math.abs(w - plot.width) > 2) plot.setSize({ width: w, height: plot.height });
      });
      observer.observe(el);
    }
    charts.set(el, { plot: plot, observer: observer });
    el.classList.add("chart-ready");
  }

  function forget(el) {
    const chart = charts.get(el);
    if (!chart) return;
    if (chart.observer) chart.observer.disconnect();
    chart.plot.destroy();
    charts.delete(el);
    el.classList.remove("chart-ready");
  }

  function init() {
    if (typeof uPlot === "undefined") return;
    // htmx replaced the dashboard: drop the charts whose element left the page.
    charts.forEach(function (_, el) { if (!el.isConnected) forget(el); });
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      if (!charts.has(el)) build(el);
    });
  }

  function rebuildAll() {
    Array.from(charts.keys()).forEach(forget);
    init();
  }

  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:afterSettle", init);
  document.addEventListener("htmx:oobAfterSwap", init);
  if (window.matchMedia) {
    const scheme = window.matchMedia("(prefers-color-scheme: dark)");
    if (scheme.addEventListener) scheme.addEventListener("change", rebuildAll);
  }
})();
