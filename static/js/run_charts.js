// Line charts as plain SVG (no library): used by the run page and the run comparison page.
// window.runCharts.draw(svg, [{name, points: [[x, y], ...], dashed}], {percent})
(function () {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";
  const COLOURS = ["#3b5bdb", "#e8590c", "#2b8a3e", "#ae3ec9", "#c92a2a", "#1098ad", "#5c940d", "#862e9c"];
  const W = 480, H = 220, PAD = { l: 48, r: 12, t: 12, b: 28 };

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function fmt(value, percent) {
    if (percent) return Math.round(value * 100) + "%";
    const abs = Math.abs(value);
    return abs >= 100 ? value.toFixed(0) : abs >= 1 ? value.toFixed(2) : value.toPrecision(2);
  }

  function draw(svg, series, options) {
    const opts = options || {};
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p[1]));
    if (!all.length) {
      svg.appendChild(el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "chart-empty" }, "No points yet"));
      return;
    }
    let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
    let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
    if (opts.percent) { y0 = Math.min(y0, 0.5); y1 = Math.max(y1, 1); }
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
    const sx = (x) => PAD.l + ((x - x0) / (x1 - x0)) * (W - PAD.l - PAD.r);
    const sy = (y) => H - PAD.b - ((y - y0) / (y1 - y0)) * (H - PAD.t - PAD.b);

    for (let i = 0; i <= 4; i++) {
      const y = y0 + ((y1 - y0) * i) / 4;
      svg.appendChild(el("line", { x1: PAD.l, x2: W - PAD.r, y1: sy(y), y2: sy(y), class: "chart-grid" }));
      svg.appendChild(el("text", { x: PAD.l - 6, y: sy(y) + 4, "text-anchor": "end", class: "chart-tick" }, fmt(y, opts.percent)));
    }
    svg.appendChild(el("text", { x: PAD.l, y: H - 6, class: "chart-tick" }, "step " + x0));
    svg.appendChild(el("text", { x: W - PAD.r, y: H - 6, "text-anchor": "end", class: "chart-tick" }, "step " + x1));

    series.forEach((s, i) => {
      const pts = s.points.filter((p) => Number.isFinite(p[1]));
      if (!pts.length) return;
      const colour = s.colour || COLOURS[i % COLOURS.length];
      const d = pts.map((p, j) => (j ? "L" : "M") + sx(p[0]).toFixed(1) + " " + sy(p[1]).toFixed(1)).join(" ");
      const path = el("path", { d, fill: "none", stroke: colour, "stroke-width": 2 });
      if (s.dashed) path.setAttribute("stroke-dasharray", "5 4");
      path.appendChild(el("title", {}, s.name));
      svg.appendChild(path);
      if (pts.length < 30) {
        for (const p of pts) svg.appendChild(el("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 2.5, fill: colour }));
      }
      svg.appendChild(el("text", { x: W - PAD.r - 4, y: PAD.t + 12 + 14 * i, "text-anchor": "end", fill: colour, class: "chart-legend" }, s.name));
    });
  }

  function points(rows, key) {
    return (rows || []).filter((r) => typeof r[key] === "number").map((r) => [r.step, r[key]]);
  }

  window.runCharts = { draw, points };
})();
