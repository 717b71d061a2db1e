// The run comparison page: one line per run on the loss and accuracy charts.
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
})();
