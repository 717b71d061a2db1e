// The run page: polls the run's API while it is queued or running and redraws progress, ETA,
// the metric curves of the run's kind and the log tail.
(function () {
  "use strict";
  const root = document.getElementById("run");
  if (!root) return;
  const url = root.dataset.url;
  const ACTIVE = ["queued", "running"];
  const POLL_MS = 2000;
  const field = (name) => root.querySelector('[data-field="' + name + '"]');
  // Which metrics each chart draws, by the run's kind (training/run_charts.py).
  const charts = JSON.parse(document.getElementById("run-charts").textContent);

  function eta(seconds) {
    if (typeof seconds !== "number" || !isFinite(seconds) || seconds <= 0) return "";
    if (seconds < 90) return "about " + Math.round(seconds) + " s left";
    if (seconds < 5400) return "about " + Math.round(seconds / 60) + " min left";
    return "about " + (seconds / 3600).toFixed(1) + " h left";
  }

  function render(run) {
    const state = field("state");
    state.textContent = run.state.charAt(0).toUpperCase() + run.state.slice(1) + (run.cancel_requested && run.state === "running" ? " (stopping)" : "");
    state.className = "state state-" + run.state;
    document.getElementById("run-bar").value = run.progress;
    field("step").textContent = run.step;
    const total = field("total_steps");
    if (total && run.total_steps) total.textContent = run.total_steps;
    const left = run.state === "running" ? eta(run.eta_seconds) : "";
    field("eta").textContent = left ? "· " + left : "";
    field("attempts").textContent = run.attempts;
    field("resumed").textContent = run.resumed_from_step ? "· resumed from step " + run.resumed_from_step : "";
    field("worker").textContent = run.worker_id || "—";
    field("checkpoint").textContent = run.checkpoint_path || "—";
    const error = field("error");
    error.hidden = !run.error;
    error.textContent = (run.error || "").slice(-400);

    const log = document.getElementById("run-log");
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    if (log.textContent !== run.log_tail) {
      log.textContent = run.log_tail;
      if (atBottom) log.scrollTop = log.scrollHeight;
    }
    const s = run.series || {};
    const { draw, points } = window.runCharts;
    for (const chart of charts) {
      const svg = document.getElementById("chart-" + chart.id);
      if (!svg) continue;
      draw(svg, chart.lines.map((line) => (
        { name: line.name, points: points(s[line.phase], line.key), dashed: line.dashed }
      )), { percent: !!chart.percent });
    }

    const cancel = document.querySelector("#cancel-form button");
    if (cancel) {
      if (!ACTIVE.includes(run.state)) cancel.closest("form").hidden = true;
      else if (run.cancel_requested) { cancel.disabled = true; cancel.textContent = "Stopping after this step…"; }
    }
    return ACTIVE.includes(run.state);
  }

  async function poll() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.ok && render(await response.json())) setTimeout(poll, POLL_MS);
      else if (!response.ok) setTimeout(poll, POLL_MS * 5);
    } catch (e) {
      setTimeout(poll, POLL_MS * 5); // the server may be restarting; keep trying, more slowly
    }
  }

  const initial = JSON.parse(document.getElementById("run-initial").textContent);
  if (render(initial)) setTimeout(poll, POLL_MS);
})();
