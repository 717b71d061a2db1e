// The training page: picking another run kind swaps in that kind's default config, unless the
// config was edited by hand, and shows that kind's table of config fields.
(function () {
  "use strict";
  const kind = document.getElementById("run-kind");
  const config = document.getElementById("run-config");
  const defaults = document.getElementById("default-configs");
  if (!kind || !config || !defaults) return;
  const configs = JSON.parse(defaults.textContent);
  const parsed = typeof configs === "string" ? JSON.parse(configs) : configs;
  let edited = false;
  config.addEventListener("input", () => { edited = true; });
  const showFields = () => {
    for (const table of document.querySelectorAll(".config-fields")) table.hidden = table.dataset.kind !== kind.value;
  };
  kind.addEventListener("change", () => {
    if (!edited && parsed[kind.value]) config.value = JSON.stringify(parsed[kind.value], null, 2);
    showFields();
  });
  showFields();
})();
