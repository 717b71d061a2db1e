// The annotator page: fetch a comparison, take a keyboard-first judgement, submit, repeat.
// Plain browser JavaScript, no build step. The server renders the shell and the label scheme
// (#annotate-config); the API renders responses to sanitised HTML, so we insert its `html` as is.
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("annotate-config").textContent);
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);

  const root = $("annotate");
  const form = $("item");
  const notice = $("notice");
  const pageNotice = $("page-notice");
  const rationale = $("rationale"); // absent when the project does not ask for one
  const dialog = $("guidelines");
  const submitButton = $("submit");

  const state = { assignment: null, choice: null, strength: null, shownAt: 0, busy: false };
  // capped: "left" stopped counting at the server's cap, so it reads "101+" (at least that many).
  const progress = { done: 0, left: 0, total: 0, capped: false };

  const ROLE_LABELS = { user: "User", assistant: "Assistant", system: "System" };

  // ---- rendering -------------------------------------------------------------------------

  function setMode(mode) {
    root.dataset.state = mode;
    $("loading").hidden = mode !== "loading";
    $("empty").hidden = mode !== "empty";
    form.hidden = mode !== "item";
  }

  // Problems with a judgement show next to the buttons (where the eyes are, even below a long
  // response); problems loading an item show at the top of the page.
  function showNotice(message, kind) {
    const target = root.dataset.state === "item" ? notice : pageNotice;
    [notice, pageNotice].forEach((box) => {
      box.textContent = box === target ? message : "";
      box.className = "notice " + (kind || "error");
      box.hidden = box !== target || !message;
    });
  }

  function renderProgress(p) {
    if (p) {
      progress.done = p.done;
      progress.left = p.left;
      progress.total = p.total;
      progress.capped = Boolean(p.left_capped);
    }
    $("progress-done").textContent = progress.done;
    $("progress-left").textContent = progress.left + (progress.capped ? "+" : "");
    const bar = $("progress-bar");
    bar.max = Math.max(progress.total, 1);
    bar.value = progress.done;
  }

  function renderTurns(messages) {
    const list = $("turns");
    list.replaceChildren();
    messages.forEach((message) => {
      const item = document.createElement("li");
      item.className = "turn turn-" + message.role;
      const who = document.createElement("div");
      who.className = "turn-role";
      who.textContent = ROLE_LABELS[message.role] || message.role;
      const body = document.createElement("div");
      body.className = "markdown";
      body.innerHTML = message.html; // sanitised server-side (annotation.rendering)
      item.append(who, body);
      list.append(item);
    });
  }

  function renderItem(assignment) {
    state.assignment = assignment;
    renderTurns(assignment.prompt.messages);
    assignment.responses.forEach((response) => {
      $("response-" + response.side + "-body").innerHTML = response.html;
    });
    selectChoice(null);
    selectStrength(null);
    if (rationale) rationale.value = "";
    setMode("item");
    window.scrollTo(0, 0);
    // Leave focus on the page, not in a box, so the next key press is a shortcut.
    if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
    state.shownAt = performance.now();
  }

  function selectChoice(choice) {
    state.choice = choice;
    document.querySelectorAll("button.choice").forEach((b) => {
      b.setAttribute("aria-pressed", String(b.dataset.choice === choice));
    });
    ["left", "right"].forEach((side) => {
      $("response-" + side).classList.toggle("chosen", choice === side);
      $("response-" + side).classList.toggle("rejected", choice === (side === "left" ? "right" : "left"));
    });
    // Strength grades a preference; it means nothing for a tie or "both bad".
    const strengths = $("strengths");
    if (strengths) {
      const applies = choice === "left" || choice === "right" || choice === null;
      strengths.classList.toggle("disabled", !applies);
      strengths.querySelectorAll("button").forEach((b) => (b.disabled = !applies));
      if (!applies) selectStrength(null);
    }
  }

  function selectStrength(index) {
    state.strength = index;
    document.querySelectorAll("button.strength").forEach((b) => {
      b.setAttribute("aria-pressed", String(Number(b.dataset.strength) === index));
    });
  }

  // ---- talking to the API ----------------------------------------------------------------

  // The page gets URLs reversed with id 0 (".../assignments/0/judgement/"); put the real id in.
  function assignmentUrl(template) {
    return template.replace("/0/", "/" + state.assignment.id + "/");
  }

  async function api(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken },
      body: JSON.stringify(body || {}),
    });
    let data = null;
    if (response.status !== 204) {
      try {
        data = await response.json();
      } catch (error) {
        data = null;
      }
    }
    return { status: response.status, ok: response.ok, data };
  }

  function errorText(result) {
    const data = result.data || {};
    if (data.errors && typeof data.errors === "object") {
      return Object.entries(data.errors)
        .map(([field, messages]) => {
          const text = Array.isArray(messages) ? messages.join(" ") : String(messages);
          return field === "non_field_errors" || field === "detail" ? text : field + ": " + text;
        })
        .join(" ");
    }
    if (data.detail) return String(data.detail);
    if (result.status === 401 || result.status === 403) return "You are logged out or not allowed to do this. Reload the page and log in again.";
    return "The server answered " + result.status + ". Try again in a moment.";
  }

  async function loadNext() {
    state.assignment = null;
    setMode("loading");
    let result;
    try {
      result = await api(config.nextUrl);
    } catch (error) {
      showNotice("Could not reach the server. Check your connection and press Check again.");
      setMode("empty");
      return;
    }
    if (result.status === 204) {
      if (progress.total) renderProgress({ done: progress.done, left: 0, total: progress.total });
      setMode("empty");
      return;
    }
    if (!result.ok) {
      showNotice(errorText(result));
      setMode("empty");
      return;
    }
    renderProgress(result.data.progress);
    renderItem(result.data.assignment);
  }

  async function submit() {
    if (state.busy || !state.assignment) return;
    if (!state.choice) {
      showNotice("Choose first: 1 or 2 for the better response" +
        (config.allowTie ? ", T for a tie" : "") + (config.allowBothBad ? ", X if both are bad" : "") + ".");
      return;
    }
    const graded = state.choice === "left" || state.choice === "right";
    if (graded && config.strengths.length && state.strength === null) {
      showNotice("How much better is it? Press " +
        config.strengths.map((s) => (s.key || "Shift+" + (s.index + 1)) + " for " + s.label).join(", ") + ".");
      return;
    }
    const text = rationale ? rationale.value.trim() : "";
    if (config.rationale === "required" && !text) {
      showNotice("This project asks for a rationale: press R and write a sentence on what decided it.");
      if (rationale) rationale.focus();
      return;
    }
    state.busy = true;
    submitButton.disabled = true;
    const body = {
      choice: state.choice,
      strength: graded && config.strengths.length ? state.strength : null,
      rationale: text,
      duration_ms: Math.round(performance.now() - state.shownAt),
    };
    try {
      const result = await api(assignmentUrl(config.judgementUrl), body);
      if (result.ok) {
        // 201 is a new judgement; 200 is a replay of one already stored (e.g. a double submit).
        if (result.status === 201) renderProgress({ done: progress.done + 1, left: Math.max(progress.left - 1, 0), total: progress.total, left_capped: progress.capped });
        showNotice("");
        await loadNext();
      } else {
        const message = errorText(result);
        if (result.status === 404 || result.status === 409) {
          // The lease is gone (ran out and taken by others, or not ours): move on rather than
          // strand the annotator, and say why this one was not saved.
          await loadNext();
          showNotice(message + " (Not saved; showing the next item.)");
        } else {
          showNotice(message);
        }
      }
    } catch (error) {
      showNotice("Could not reach the server; nothing was lost. Press Enter to try again.");
    } finally {
      state.busy = false;
      submitButton.disabled = false;
    }
  }

  async function skip() {
    if (state.busy || !state.assignment) return;
    state.busy = true;
    try {
      const result = await api(assignmentUrl(config.skipUrl));
      if (!result.ok && result.status !== 404) {
        showNotice(errorText(result));
        return;
      }
      showNotice("");
      await loadNext();
    } catch (error) {
      showNotice("Could not reach the server. Try again in a moment.");
    } finally {
      state.busy = false;
    }
  }

  // ---- guidelines overlay ----------------------------------------------------------------

  function toggleGuidelines() {
    if (dialog.open) closeGuidelines();
    else dialog.showModal();
  }

  // Focus must not stay on the dialog's Close button once it is hidden, or the next Enter would
  // "press" that invisible button instead of submitting.
  function closeGuidelines() {
    if (dialog.open) dialog.close();
    if (dialog.contains(document.activeElement)) document.activeElement.blur();
  }

  // ---- keyboard --------------------------------------------------------------------------

  const CHOICE_KEYS = { 1: "left", arrowleft: "left", 2: "right", arrowright: "right" };
  if (config.allowTie) CHOICE_KEYS.t = "tie";
  if (config.allowBothBad) CHOICE_KEYS.x = "both_bad";
  const STRENGTH_KEYS = {};
  config.strengths.forEach((s) => {
    if (s.key) STRENGTH_KEYS[s.key.toLowerCase()] = s.index;
  });

  function onKeyDown(event) {
    if (event.ctrlKey || event.altKey || event.metaKey) {
      // Ctrl/Cmd+Enter submits from the rationale box; other chords belong to the browser.
      if (event.key === "Enter" && event.target === rationale && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        submit();
      }
      return;
    }
    const key = event.key.toLowerCase();

    if (dialog.open) {
      if (key === "g" || key === "?") {
        event.preventDefault();
        closeGuidelines();
      }
      return; // Esc closes the native dialog by itself (and the close listener tidies focus)
    }

    // Typing in the rationale (or any field) is text, not shortcuts; Esc leaves the box.
    // A key from inside the closed dialog (focus not yet moved) counts as a key on the page.
    const target = dialog.contains(event.target) ? document.body : event.target;
    if (target.closest && target.closest("textarea, input, select, [contenteditable]")) {
      if (key === "escape") {
        event.preventDefault();
        target.blur();
      }
      return;
    }

    if (key === "g" || key === "?") {
      event.preventDefault();
      toggleGuidelines();
      return;
    }
    if (root.dataset.state !== "item") return;

    if (key === "enter") {
      // Enter on links and on buttons with their own action (Skip, Guidelines) keeps its meaning.
      if (target.closest && target.closest("a, button, summary") && !target.closest("[data-shortcut-enter], #submit")) return;
      event.preventDefault();
      submit();
      return;
    }
    if (key in CHOICE_KEYS) {
      event.preventDefault();
      selectChoice(CHOICE_KEYS[key]);
      showNotice("");
      return;
    }
    if (event.shiftKey && /^Digit[1-9]$/.test(event.code)) {
      const index = Number(event.code.slice(5)) - 1;
      if (index < config.strengths.length) {
        event.preventDefault();
        if (state.choice === "tie" || state.choice === "both_bad") return;
        selectStrength(index);
        showNotice("");
      }
      return;
    }
    if (key in STRENGTH_KEYS) {
      event.preventDefault();
      if (state.choice === "tie" || state.choice === "both_bad") return;
      selectStrength(STRENGTH_KEYS[key]);
      showNotice("");
      return;
    }
    if (key === "r" && rationale) {
      event.preventDefault(); // keep the "r" out of the box
      rationale.focus();
      return;
    }
    if (key === "s") {
      event.preventDefault();
      skip();
    }
  }

  // ---- wiring ----------------------------------------------------------------------------

  document.addEventListener("keydown", onKeyDown);
  document.querySelectorAll("button.choice").forEach((b) =>
    b.addEventListener("click", () => {
      selectChoice(b.dataset.choice);
      showNotice("");
    })
  );
  document.querySelectorAll("button.strength").forEach((b) =>
    b.addEventListener("click", () => {
      selectStrength(Number(b.dataset.strength));
      showNotice("");
    })
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  $("skip").addEventListener("click", skip);
  $("reload").addEventListener("click", () => {
    showNotice("");
    loadNext();
  });
  $("guidelines-open").addEventListener("click", toggleGuidelines);
  $("guidelines-close").addEventListener("click", closeGuidelines);
  dialog.addEventListener("close", () => {
    if (dialog.contains(document.activeElement)) document.activeElement.blur();
  });

  renderProgress({
    done: Number($("progress-done").textContent),
    left: parseInt($("progress-left").textContent, 10),
    total: Number($("progress-bar").dataset.total),
    left_capped: $("progress-left").textContent.endsWith("+"),
  });
  loadNext();
})();
