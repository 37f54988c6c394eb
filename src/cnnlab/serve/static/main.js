// The page's start: models and their options, and one run of every view for the image on screen.
"use strict";

// options a view controls live (a slider filters what one request returned), not through the form
const LIVE = new Set(["score_threshold", "alpha", "attention", "show_proposals"]);
const RESULTS = ["prediction", "cam-view", "layer-view", "unit-view", "convolution", "overview", "conv-step", "pixels-view"];

function clearResults() {
  for (const id of RESULTS) { $(id).replaceChildren(); delete $(id).dataset.image; }
  $("cam-class").replaceChildren();
  document.querySelectorAll("#arch tr.on").forEach((tr) => tr.classList.remove("on"));
}

function runAll() {
  if (!state.image) return;
  runPredict();
  const m = currentModel();
  if (m && m.explain && state.arch) runInspect();  // else it runs once the architecture has loaded
  if (m && m.explain) runNetwork();
  runPixels();
  schedule();
}

// ------------------------------------------------------------------ models and their options
async function loadModels() {
  state.models = await api("/v1/models");
  const select = $("model");
  select.replaceChildren(...state.models.map((m) => el("option", { value: m.name, text: m.name })));
  select.addEventListener("change", showModel);
  showModel();
}

function showModel() {
  const m = currentModel();
  if (!m) return;
  state.rid += 1;  // replies for the previous model are stale
  clearResults();
  clearError();
  const shape = m.input_shape.length ? ` · input ${m.input_shape.join("x")}` : "";
  const classes = m.classes.length ? ` · ${m.classes.length} classes` : "";
  $("model-info").textContent = `${m.task} · ${m.model} (${m.runtime})${shape}${classes}`;
  document.body.dataset.task = m.task;
  const options = $("options");
  options.replaceChildren();
  for (const f of (m.option_fields || []).filter((f) => !LIVE.has(f.name))) {  // typed: label, default, range, help
    const type = f.type === "bool" ? "checkbox" : f.type === "int" || f.type === "float" ? "number" : "text";
    const input = el("input", { type, "data-option": f.name, "data-type": f.type, id: `option-${f.name}`, title: f.help });
    if (type === "number") {
      input.step = f.type === "int" ? "1" : "any";
      if (f.low !== null) input.min = f.low;
      if (f.high !== null) input.max = f.high;
    }
    if (type === "checkbox") input.checked = f.default; else input.value = f.default === null ? "" : f.default;
    if (f.default === null) input.placeholder = "default";
    input.addEventListener("change", runPredict);
    options.append(el("label", { for: input.id }, `${f.label} `, input),
      el("small", { class: "help", text: f.help + (f.default === null ? "" : ` (default ${f.default})`) }));
  }
  $("draw").hidden = m.input_shape[0] !== 1;  // the drawing pad: white ink on black, for one-channel models
  for (const id of ["explain-panel", "network-panel"]) $(id).hidden = !m.explain;
  state.arch = null;
  $("cam-layer").replaceChildren();
  $("arch").tBodies[0].replaceChildren();
  if (m.explain) loadArchitecture(m.name).then(() => { if (state.image && state.arch) runInspect(); });
  runAll();
}

function optionValues() {
  const out = {};
  for (const input of document.querySelectorAll("[data-option]")) {
    if (input.type === "checkbox") out[input.dataset.option] = input.checked;
    else if (input.value !== "") out[input.dataset.option] = input.dataset.type === "str" ? input.value : Number(input.value);
  }
  const m = currentModel();
  const names = new Set((m.option_fields || []).map((f) => f.name));
  if (names.has("score_threshold")) out.score_threshold = SCORE_FLOOR;  // the slider filters above this, live
  if (names.has("attention") && m.attention) out.attention = true;
  if (names.has("show_proposals")) out.show_proposals = true;  // step 1 of the R-CNN story
  return out;
}

// ------------------------------------------------------------------ prediction: each task's own view
async function runPredict() {
  if (!state.image) return;
  const ticket = begin("predict"), out = $("prediction");
  out.replaceChildren(el("p", { class: "muted", text: "predicting..." }));
  try {
    const r = await api("/v1/predict", imageForm({ options: JSON.stringify(optionValues()) }));
    if (!fresh(ticket)) return;
    clearError();
    const view = { classify: topView, detect: boxesView, segment: maskView, caption: captionView }[r.task] || otherView;
    out.replaceChildren(el("p", { class: "muted", text: `${r.task} · model ${r.model} · image ${r.image}${sized(r)}` }),
      ...[].concat(view(r)));
    tagged(out, r.image);
  } catch (e) { failed(ticket, e, out); }
}

function sized(r) { return r.resized ? ` (scaled down from ${r.resized.from.join("x")} to ${r.resized.to.join("x")})` : ""; }

function otherView(r) {  // a task this page has no view for: its JSON
  return el("pre", { text: JSON.stringify(r, null, 1).slice(0, 4000) });
}

// ------------------------------------------------------------------ start
window.addEventListener("DOMContentLoaded", async () => {
  setupInput();
  $("error-close").addEventListener("click", clearError);
  setupExplain();
  setupConvolve();
  try { await Promise.all([loadModels(), loadKernels(), loadXo()]); } catch (e) { showError(e.message); }
});
