// lmbff studio: the page. Plain JavaScript, no build step. Every text from the server or the user is
// put in the page with textContent (templates and data are user content).
"use strict";

const $ = (id) => document.getElementById(id);
const CLIENT = Math.random().toString(36).slice(2) + Date.now().toString(36);
const PANES = ["A", "B"];
const RENDER_DELAY = 250; // ms after the last keystroke
const EVALUATE_DELAY = 900;

const state = {
  files: [], file: null, version: null, task: null, templates: [], data: null,
  revision: 0, inflight: {}, timers: {}, modelReady: false,
  panes: {}, // pane -> {root, rows, scores, renderRevision}
};

// ---- requests ---------------------------------------------------------------------------------
// One channel per kind of request and pane: a new request aborts the one before it, and the server
// drops work for a revision that is no longer the newest.
async function post(channel, url, body) {
  if (state.inflight[channel]) state.inflight[channel].abort();
  const controller = new AbortController();
  state.inflight[channel] = controller;
  const revision = ++state.revision;
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ ...body, client: CLIENT, revision }),
    signal: controller.signal,
  });
  return { response, revision, controller };
}

async function errorOf(response) {
  try { return await response.json(); } catch { return { error: `${response.status} ${response.statusText}` }; }
}

function isAbort(err) { return err && err.name === "AbortError"; }

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

// ---- model status -----------------------------------------------------------------------------
async function pollStatus() {
  let status;
  try {
    status = await (await fetch("/api/status")).json();
  } catch {
    $("model-text").textContent = "the server does not answer";
    setTimeout(pollStatus, 2000);
    return;
  }
  const bar = $("model-bar");
  if (status.state === "ready") {
    $("model-text").textContent = `${status.model} (${status.kind} LM) ready in ${status.seconds}s`;
    bar.className = "bar done";
    if (!state.modelReady) { state.modelReady = true; refreshAll(); }
    return;
  }
  if (status.state === "failed") {
    $("model-text").textContent = `model failed to load: ${status.error}`;
    bar.className = "bar failed";
    return;
  }
  $("model-text").textContent = `loading ${status.model}: ${status.stage || "starting"} (${status.seconds}s)`;
  bar.className = "bar indeterminate";
  if (status.tokenizer_ready && !state.tokenizerSeen) { state.tokenizerSeen = true; refreshAll(); }
  setTimeout(pollStatus, 700);
}

// ---- tasks and data ---------------------------------------------------------------------------
async function loadTasks(preferred) {
  const answer = await (await fetch("/api/tasks")).json();
  state.files = answer.files.filter((f) => !f.shadowed);
  const select = $("task");
  select.replaceChildren();
  for (const f of state.files) {
    const option = el("option", null, `${f.task}${f.source === "workspace" ? "  (workspace)" : ""}`);
    option.value = `${f.source}/${f.name}`;
    select.appendChild(option);
  }
  const wanted = preferred && state.files.find((f) => f.task.toLowerCase() === preferred.toLowerCase());
  if (wanted) select.value = `${wanted.source}/${wanted.name}`;
}

function selectedFile() {
  const [source, ...rest] = $("task").value.split("/");
  return { source, name: rest.join("/") };
}

async function loadTask() {
  const file = selectedFile();
  const response = await fetch(`/api/task?source=${encodeURIComponent(file.source)}&name=${encodeURIComponent(file.name)}`);
  if (!response.ok) { showNotice((await errorOf(response)).error, true); return; }
  const answer = await response.json();
  state.file = answer.file; state.version = answer.version; state.task = answer.task;
  state.templates = answer.templates; state.data = answer.data;
  const data = $("data");
  data.replaceChildren();
  for (const name of answer.data.files) {
    const option = el("option", null, name); option.value = name; data.appendChild(option);
  }
  if (answer.data.default) data.value = answer.data.default;
  PANES.forEach((pane, i) => {
    const names = state.templates.map((t) => t.name);
    const start = i === 0 ? answer.default_template : names.find((n) => n !== answer.default_template) || names[0];
    fillTemplateSelect(pane, start);
    useTemplate(pane, start);
  });
  if (!answer.data.files.length) showNotice("No data for this task: start the studio with --data-dir.");
  refreshAll();
}

function fillTemplateSelect(pane, selected) {
  const select = state.panes[pane].root.querySelector(".template-select");
  select.replaceChildren();
  for (const t of state.templates) {
    const option = el("option", null, t.name); option.value = t.name; select.appendChild(option);
  }
  select.value = selected;
}

function draftKey(pane) { return `lmbff-studio:${state.file.source}/${state.file.name}:${pane}`; }

function useTemplate(pane, name) {
  const p = state.panes[pane];
  const spec = state.templates.find((t) => t.name === name) || state.templates[0];
  let draft = { name: spec.name, text: spec.text, words: spec.label_words };
  const kept = localStorage.getItem(draftKey(pane));
  if (kept) {
    const saved = JSON.parse(kept);
    if (saved.name === spec.name) draft = saved; // an unsaved edit of this template survives a reload
  }
  p.root.querySelector(".template-name").value = draft.name;
  p.root.querySelector(".template-text").value = draft.text;
  const body = p.root.querySelector(".label-words tbody");
  body.replaceChildren();
  for (const label of state.task.labels) {
    const row = el("tr");
    const name = state.task.label_names[label];
    row.appendChild(el("td", null, name ? `${label} (${name})` : label));
    const cell = el("td");
    const input = el("input");
    input.type = "text"; input.dataset.label = label; input.spellcheck = false;
    input.setAttribute("aria-label", `label words for ${label}`);
    input.value = (draft.words[label] || []).join(", ");
    input.addEventListener("input", () => edited(pane));
    cell.appendChild(input); row.appendChild(cell); body.appendChild(row);
  }
  // A template that scores by prototypes (verbalizer: prototype) learns them in training: the studio's
  // zero-shot scores are its label words'.
  const kind = spec.verbalizer || "words";
  p.root.querySelector(".verbalizer").textContent = kind === "words" ? "" :
    `verbalizer: ${kind}. Its prototypes are learned in training; the scores here are the label words' (zero-shot).`;
  updateGutter(pane, []);
}

function prompt(pane) {
  const root = state.panes[pane].root;
  const words = {};
  root.querySelectorAll(".label-words input").forEach((input) => {
    words[input.dataset.label] = input.value.split(",").map((w) => w.trim()).filter(Boolean);
  });
  return {
    name: root.querySelector(".template-name").value.trim() || "draft",
    template: root.querySelector(".template-text").value,
    label_words: words,
  };
}

function common() {
  return {
    file: state.file,
    data: $("data").value || null,
    start: Math.max(0, parseInt($("start").value, 10) || 0),
    n: Math.min(32, Math.max(1, parseInt($("count").value, 10) || 6)),
    max_length: Math.min(4096, Math.max(16, parseInt($("max-length").value, 10) || 256)),
    calibrate: $("calibrate").checked,
  };
}

function activePanes() { return $("compare").checked ? PANES : ["A"]; }

// ---- editing ----------------------------------------------------------------------------------
function edited(pane) {
  const p = prompt(pane);
  localStorage.setItem(draftKey(pane), JSON.stringify({ name: p.name, text: p.template, words: p.label_words }));
  updateGutter(pane, state.panes[pane].issues || []);
  schedule(`render-${pane}`, RENDER_DELAY, () => renderPane(pane));
  schedule("evaluate", EVALUATE_DELAY, evaluate);
}

function schedule(key, delay, fn) {
  clearTimeout(state.timers[key]);
  state.timers[key] = setTimeout(fn, delay);
}

function refreshAll() {
  if (!state.file) return;
  for (const pane of activePanes()) renderPane(pane);
  schedule("evaluate", 50, evaluate);
}

function updateGutter(pane, issues) {
  const root = state.panes[pane].root;
  const lines = root.querySelector(".template-text").value.split("\n").length;
  const marks = {};
  for (const issue of issues) {
    if (issue.line && (issue.severity === "error" || issue.severity === "warning")) {
      if (marks[issue.line] !== "bad") marks[issue.line] = issue.severity === "error" ? "bad" : "warn";
    }
  }
  const gutter = root.querySelector(".gutter");
  gutter.replaceChildren();
  for (let i = 1; i <= lines; i++) {
    const span = el("span", marks[i] || null, String(i));
    const why = issues.filter((x) => x.line === i).map((x) => x.message).join("\n");
    if (why) span.title = why;
    gutter.appendChild(span);
    if (i < lines) gutter.appendChild(document.createTextNode("\n"));
  }
}

function showIssues(pane, issues) {
  const p = state.panes[pane];
  p.issues = issues;
  const list = p.root.querySelector(".issues");
  list.replaceChildren();
  if (!issues.length) list.appendChild(el("li", "clean", "lint: clean"));
  for (const issue of issues) {
    const where = issue.line ? `line ${issue.line}: ` : "";
    const item = el("li", issue.severity, `${issue.severity}: ${where}${issue.message}${issue.suggestion ? ` (${issue.suggestion})` : ""}`);
    if (issue.line) item.addEventListener("click", () => selectLine(pane, issue.line));
    list.appendChild(item);
  }
  updateGutter(pane, issues);
}

function selectLine(pane, line) {
  const area = state.panes[pane].root.querySelector(".template-text");
  const lines = area.value.split("\n");
  const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
  area.focus();
  area.setSelectionRange(start, start + (lines[line - 1] || "").length);
}

// ---- rendering and scoring ----------------------------------------------------------------------
async function renderPane(pane) {
  if (!state.file) return;
  const p = state.panes[pane];
  const body = { ...common(), ...prompt(pane), pane };
  let answer;
  try {
    const { response } = await post(`render-${pane}`, "/api/render", body);
    answer = response.ok ? await response.json() : await errorOf(response);
    if (!response.ok) {
      if (answer.code === "superseded") return;
      if (answer.code === "loading") { showNotice("Loading the tokenizer…"); return; }
      showIssues(pane, answer.issues || [{ severity: "error", message: answer.error }]);
      p.rows = []; p.scores = null; drawExamples();
      return;
    }
  } catch (err) { if (!isAbort(err)) showNotice(String(err), true); return; }
  showIssues(pane, answer.issues);
  p.rows = answer.rows; p.slotWords = answer.slot_words || []; p.scores = null;
  p.total = answer.total; p.skipped = answer.skipped;
  drawExamples();
  if (answer.ok && answer.rows.length) scorePane(pane, body);
}

async function scorePane(pane, body) {
  const p = state.panes[pane];
  try {
    const { response } = await post(`score-${pane}`, "/api/score", body);
    const answer = response.ok ? await response.json() : await errorOf(response);
    if (!response.ok) {
      if (answer.code === "loading" || answer.code === "superseded") return; // the status poll re-runs it
      showNotice(answer.error, true);
      return;
    }
    p.scores = answer.rows;
    drawExamples();
  } catch (err) { if (!isAbort(err)) showNotice(String(err), true); }
}

function showNotice(text, error) {
  const box = $("examples");
  box.replaceChildren(el("div", `notice${error ? " error" : ""}`, text));
}

function drawExamples() {
  const panes = activePanes();
  const first = state.panes[panes[0]];
  const box = $("examples");
  box.replaceChildren();
  if (!first.rows || !first.rows.length) {
    box.appendChild(el("div", "notice", first.issues && first.issues.some((i) => i.severity === "error")
      ? "Fix the lint errors to see the examples." : "No examples to show."));
    return;
  }
  const summary = el("div", "muted", `${first.total} examples in the file` +
    (first.skipped ? `, ${first.skipped} malformed rows skipped` : ""));
  box.appendChild(summary);
  first.rows.forEach((row, i) => {
    const card = el("div", "example");
    card.dataset.index = String(i);
    const head = el("div", "example-head");
    head.appendChild(el("span", null, row.source));
    if (row.gold !== null) head.appendChild(el("span", null, `gold: ${labelName(row.gold)}`));
    card.appendChild(head);
    for (const pane of panes) {
      const p = state.panes[pane];
      if (p.rows && p.rows[i]) card.appendChild(reading(pane, p, i));
    }
    box.appendChild(card);
  });
}

function labelName(label) {
  const name = state.task && state.task.label_names[label];
  return name ? `${label} (${name})` : label;
}

function reading(pane, p, i) {
  const row = p.rows[i];
  const part = el("div", "reading");
  part.dataset.pane = pane;
  part.appendChild(el("span", "pane-tag", pane));
  const text = el("div");
  const promptText = el("div", "prompt");
  promptText.appendChild(document.createTextNode(row.before));
  const score = p.scores && p.scores[i];
  const slot = el("span", "slot", score ? wordsOf(p, score.prediction) : p.slotWords.join(" | "));
  promptText.appendChild(slot);
  promptText.appendChild(document.createTextNode(row.after));
  text.appendChild(promptText);
  const meta = el("div", "meta", `${row.tokens} tokens`);
  const cuts = Object.entries(row.truncated);
  if (cuts.length) {
    meta.appendChild(document.createTextNode(" · "));
    meta.appendChild(el("span", "cut", "truncated: " + cuts.map(([f, n]) => `${f} −${n} tokens`).join(", ")));
  }
  text.appendChild(meta);
  part.appendChild(text);
  const bars = el("div", "bars");
  if (score) {
    for (const [label, prob] of Object.entries(score.probabilities)) {
      const line = el("div", `bar-row${label === score.prediction ? " predicted" : ""}`);
      line.dataset.label = label;
      line.appendChild(el("span", null, wordsOf(p, label)));
      const track = el("div", "track"); const fill = el("div", "fill");
      fill.style.width = `${(prob * 100).toFixed(1)}%`;
      track.appendChild(fill); line.appendChild(track);
      line.appendChild(el("span", "value", prob.toFixed(3)));
      bars.appendChild(line);
    }
    if (score.correct !== null) {
      bars.appendChild(el("div", `verdict ${score.correct ? "right" : "wrong"}`,
        `${score.correct ? "✓ right" : "✗ wrong"}: ${verdictLabel(p, score.prediction)}`));
    }
  } else {
    bars.appendChild(el("div", "muted", state.modelReady ? "scoring…" : "waiting for the model…"));
  }
  part.appendChild(bars);
  return part;
}

function verdictLabel(p, label) {
  const name = state.task.label_names[label];
  return name ? `${label} (${name})` : `${label} (${wordsOf(p, label)})`;
}

function wordsOf(p, label) {
  const index = state.task.labels.indexOf(label);
  return (p.slotWords && p.slotWords[index]) || label;
}

// ---- evaluation on a sample -----------------------------------------------------------------------
async function evaluate() {
  if (!state.file || !$("data").value) return;
  if (!state.modelReady) { $("eval-text").textContent = "waiting for the model…"; return; }
  const panes = activePanes();
  const prompts = panes.map(prompt);
  const bar = $("eval-bar");
  bar.className = "bar"; bar.style.width = "0";
  $("eval-text").textContent = "scoring…";
  let response;
  try {
    ({ response } = await post("evaluate", "/api/evaluate",
      { ...common(), prompts, sample: parseInt($("sample").value, 10) }));
  } catch (err) { if (!isAbort(err)) $("eval-text").textContent = String(err); return; }
  if (!response.ok) {
    const answer = await errorOf(response);
    if (answer.code === "superseded") return;
    $("eval-text").textContent = answer.code === "lint" ? "fix the lint errors to score the sample" : answer.error;
    return;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n")) >= 0) {
        const line = JSON.parse(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 1);
        if (line.type === "progress") {
          bar.style.width = `${(100 * line.done / line.total).toFixed(0)}%`;
          $("eval-text").textContent = `scoring ${line.done} / ${line.total}`;
        } else if (line.type === "result") {
          bar.className = "bar done";
          showEvaluation(panes, line);
        } else if (line.type === "error") {
          bar.className = "bar failed";
          $("eval-text").textContent = line.error;
        }
      }
    }
  } catch (err) { if (!isAbort(err)) $("eval-text").textContent = String(err); }
}

function showEvaluation(panes, result) {
  const metric = state.task.metric;
  $("metric-raw").textContent = `zero-shot ${metric}`;
  $("metric-cal").textContent = `calibrated ${metric}`;
  const table = $("eval-table");
  const body = table.querySelector("tbody");
  body.replaceChildren();
  result.prompts.forEach((m, i) => {
    const row = el("tr");
    row.appendChild(el("td", null, `${panes[i]}: ${prompt(panes[i]).name}`));
    const value = (x) => (x === undefined ? "n/a" : (100 * x).toFixed(1));
    row.appendChild(el("td", "num", m.labelled ? value(m.raw[metric]) : "no labels"));
    const cal = el("td", "num", m.labelled ? value(m.calibrated[metric]) : "");
    if (!$("calibrate").checked) cal.classList.add("muted");
    row.appendChild(cal);
    body.appendChild(row);
  });
  table.hidden = false;
  const labelled = result.prompts[0].labelled || 0;
  $("eval-text").textContent = `${result.sample} examples sampled from ${$("data").value} (${labelled} labelled)`;
  const details = $("disagreements");
  if (!result.disagreements) { details.hidden = true; return; }
  details.hidden = false;
  details.querySelector("summary").textContent = `A and B disagree on ${result.disagreements.length} of ` +
    `${result.sample}${result.calibrated ? " (calibrated)" : ""}`;
  const rows = details.querySelector("tbody");
  rows.replaceChildren();
  for (const d of result.disagreements) {
    const row = el("tr");
    row.appendChild(el("td", null, d.text));
    row.appendChild(el("td", null, d.gold === null ? "" : labelName(d.gold)));
    row.appendChild(el("td", d.a_correct === null ? null : d.a_correct ? "right-cell" : "wrong-cell", labelName(d.a)));
    row.appendChild(el("td", d.b_correct === null ? null : d.b_correct ? "right-cell" : "wrong-cell", labelName(d.b)));
    rows.appendChild(row);
  }
}

// ---- saving -------------------------------------------------------------------------------------
async function save(pane, baseVersion) {
  const p = state.panes[pane];
  const status = p.root.querySelector(".save-status");
  const draft = prompt(pane);
  const base = baseVersion !== undefined ? baseVersion : state.file.source === "workspace" ? state.version : null;
  status.textContent = "saving…";
  const response = await fetch("/api/save", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ file: state.file, ...draft, base_version: base,
      make_default: p.root.querySelector(".make-default").checked }),
  });
  const answer = response.ok ? await response.json() : await errorOf(response);
  if (response.ok) {
    localStorage.removeItem(draftKey(pane));
    state.file = answer.file; state.version = answer.version;
    status.textContent = `saved to ${answer.path}` + (answer.warnings.length ? ` (${answer.warnings.length} warnings)` : "");
    status.dataset.saved = answer.path;
    const existing = state.templates.find((t) => t.name === draft.name);
    const entry = { name: draft.name, text: draft.template, label_words: draft.label_words };
    if (existing) Object.assign(existing, entry); else state.templates.push(entry);
    await loadTasks();
    $("task").value = `${answer.file.source}/${answer.file.name}`;
    for (const other of PANES) fillTemplateSelect(other, prompt(other).name);
    return;
  }
  if (answer.code === "conflict") {
    status.textContent = "not saved: the file changed on disk";
    askConflict(pane, answer);
    return;
  }
  status.textContent = `not saved: ${answer.error}` + (answer.issues ? `: ${answer.issues.join("; ")}` : "");
}

function askConflict(pane, answer) {
  $("conflict-text").textContent = answer.error;
  $("conflict-file").textContent = answer.current_text || "(the file is gone)";
  $("conflict").hidden = false;
  $("conflict-save").onclick = () => { $("conflict").hidden = true; save(pane, answer.current_version); };
  $("conflict-cancel").onclick = () => { $("conflict").hidden = true; };
}

// ---- start --------------------------------------------------------------------------------------
function buildPanes() {
  const holder = $("editors");
  for (const pane of PANES) {
    const node = $("pane-template").content.firstElementChild.cloneNode(true);
    node.id = `pane-${pane}`;
    node.dataset.pane = pane;
    node.querySelector(".pane-title").textContent = `Template ${pane}`;
    node.querySelector(".template-text").addEventListener("input", () => edited(pane));
    node.querySelector(".template-text").addEventListener("scroll", (e) => {
      node.querySelector(".gutter").scrollTop = e.target.scrollTop;
    });
    node.querySelector(".template-name").addEventListener("input", () => edited(pane));
    node.querySelector(".template-select").addEventListener("change", (e) => {
      localStorage.removeItem(draftKey(pane));
      useTemplate(pane, e.target.value);
      edited(pane);
    });
    node.querySelector(".save").addEventListener("click", () => save(pane));
    if (pane !== "A") node.hidden = true;
    holder.appendChild(node);
    state.panes[pane] = { root: node, rows: [], scores: null, issues: [] };
  }
}

async function start() {
  buildPanes();
  $("task").addEventListener("change", loadTask);
  for (const id of ["data", "start", "count", "max-length"]) $(id).addEventListener("change", refreshAll);
  $("calibrate").addEventListener("change", refreshAll);
  $("sample").addEventListener("change", () => schedule("evaluate", 50, evaluate));
  $("compare").addEventListener("change", () => {
    $("pane-B").hidden = !$("compare").checked;
    refreshAll();
  });
  pollStatus();
  await loadTasks(new URLSearchParams(location.search).get("task"));
  if (state.files.length) await loadTask();
}

start();
