// The run comparison page: one line per run on the loss and accuracy charts (and, with RL runs
// among them, the rollout reward and KL).
(function () {
  "use strict";
  const data = document.getElementById("compare-runs");
  if (!data) return;
  const runs = JSON.parse(data.textContent);
  const { draw, points } = window.runCharts;
  draw(document.getElementById("chart-loss"), runs.map((r) => ({ name: r.name, points: points(r.series.train, "loss") })));
  draw(
    document.getElementById("chart-accuracy"),
    runs.map((r) => ({ name: r.name, points: points(r.series.eval, "accuracy") })),
    { percent: true },
  );
  for (const key of ["reward", "kl"]) {
    const svg = document.getElementById("chart-" + key);
    if (svg) draw(svg, runs.map((r) => ({ name: r.name, points: points(r.series.train, key) })));
  }
})();
