// cnnlab's page: pick or draw an image, then predict, explain and convolve through the JSON API.
// Results are rendered by their shape: "top" (bars), "boxes", "mask" + shares, "caption" + beams
// + attention; anything else is listed as JSON, and any data-URL image in it is shown.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { image: null, name: "", models: [], url: null, arch: null, inspected: null, layer: null };
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173"];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => { box.hidden = true; }, 8000);
}

async function api(path, form) {
  const response = await fetch(path, form ? { method: "POST", body: form } : {});
  const body = await response.json().catch(() => ({ detail: response.statusText }));
  if (!response.ok) throw new Error(`${response.status}: ${body.detail || response.statusText}`);
  return body;
}

function currentModel() { return state.models.find((m) => m.name === $("model").value); }

// ------------------------------------------------------------------ input: file, drop, drawing
function setImage(blob, name) {
  state.image = blob;
  state.name = name;
  if (state.url) URL.revokeObjectURL(state.url);
  state.url = URL.createObjectURL(blob);
  $("preview").src = state.url;
  $("preview").classList.toggle("pixelated", name === "drawing.png");
  $("preview-name").textContent = name;
  $("preview-box").hidden = false;
  $("no-image").hidden = true;
  for (const id of ["run-predict", "run-explain", "run-convolve"]) $(id).disabled = false;
  $("run-explain").disabled = !(currentModel() || {}).explain;
  $("cam-class").replaceChildren();  // a new image: Grad-CAM for its own predicted class
  runPredict();
  if (state.arch) runInspect();  // else it runs once the architecture has loaded
  schedule();
}

function clearResults() {  // a failed request leaves no stale result from an earlier image on screen
  for (const id of ["prediction", "explanation", "cam-view", "layer-view", "unit-view", "convolution"]) $(id).replaceChildren();
  $("seen-box").hidden = true;
  $("seen").removeAttribute("src");
  $("cam-class").replaceChildren();
  state.inspected = null;
}

function setupInput() {
  $("file").addEventListener("change", (e) => { const f = e.target.files[0]; if (f) setImage(f, f.name); });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const f = e.dataTransfer.files[0];
    if (f) setImage(f, f.name);
  });
  const pad = $("pad"), ctx = pad.getContext("2d");
  const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, pad.width, pad.height); };
  clear();
  let drawing = false;
  const at = (e) => {
    const r = pad.getBoundingClientRect();
    return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height];
  };
  pad.addEventListener("pointerdown", (e) => { drawing = true; ctx.beginPath(); ctx.moveTo(...at(e)); });
  pad.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    Object.assign(ctx, { lineWidth: 26, lineCap: "round", lineJoin: "round", strokeStyle: "#fff" });
    ctx.lineTo(...at(e));
    ctx.stroke();
  });
  for (const ev of ["pointerup", "pointerleave"]) pad.addEventListener(ev, () => { drawing = false; });
  $("clear-drawing").addEventListener("click", clear);
  $("use-drawing").addEventListener("click", () => pad.toBlob((b) => setImage(b, "drawing.png"), "image/png"));
}

// ------------------------------------------------------------------ models and their options
async function loadModels() {
  state.models = await api("/v1/models");
  const select = $("model");
  select.replaceChildren(...state.models.map((m) => el("option", { value: m.name, text: m.name })));
  select.addEventListener("change", () => { showModel(); if (state.image) runPredict(); });
  showModel();
}

function showModel() {
  const m = currentModel();
  if (!m) return;
  const shape = m.input_shape.length ? ` · input ${m.input_shape.join("x")}` : "";
  $("model-info").textContent = `${m.task} · ${m.model} (${m.runtime})${shape} · ${m.classes.length} classes`;
  const options = $("options");
  options.replaceChildren();
  for (const f of m.option_fields || []) {  // the task's typed options: label, default, range, help
    const type = f.type === "bool" ? "checkbox" : f.type === "int" || f.type === "float" ? "number" : "text";
    const input = el("input", { type, "data-option": f.name, "data-type": f.type, id: `option-${f.name}`, title: f.help });
    if (type === "number") {
      input.step = f.type === "int" ? "1" : "any";
      if (f.low !== null) input.min = f.low;
      if (f.high !== null) input.max = f.high;
    }
    if (type === "checkbox") input.checked = f.default; else input.value = f.default === null ? "" : f.default;
    if (f.default === null) input.placeholder = "default";
    options.append(el("label", { for: input.id }, `${f.label} `, input),
      el("small", { class: "help", text: f.help + (f.default === null ? "" : ` (default ${f.default})`) }));
  }
  $("draw").hidden = m.input_shape[0] !== 1;  // the drawing pad: white ink on black, for one-channel models
  $("explainer").hidden = !m.explain;
  state.arch = null;
  state.layer = null;
  clearResults();
  $("cam-layer").replaceChildren();
  if (m.explain) loadArchitecture(m.name).then(runInspect);
  $("run-explain").disabled = !state.image || !m.explain;
  $("explanation").replaceChildren(m.explain ? "" : el("p", { class: "muted", text: "explain opens up PyTorch classifiers" }));
}

function optionValues() {
  const out = {};
  for (const input of document.querySelectorAll("[data-option]")) {
    if (input.type === "checkbox") out[input.dataset.option] = input.checked;
    else if (input.value === "") continue;
    else if (input.type === "number") out[input.dataset.option] = Number(input.value);
    else out[input.dataset.option] = input.value;
  }
  return out;
}

function imageForm(extra = {}) {
  const form = new FormData();
  form.append("file", state.image, state.name);
  form.append("model", $("model").value);
  for (const [k, v] of Object.entries(extra)) for (const item of [].concat(v)) form.append(k, item);
  return form;
}

// ------------------------------------------------------------------ prediction, by result shape
async function runPredict() {
  if (!state.image) return;
  const out = $("prediction");
  out.replaceChildren(el("p", { class: "muted", text: "predicting..." }));
  try {
    const result = await api("/v1/predict", imageForm({ options: JSON.stringify(optionValues()) }));
    out.replaceChildren(...renderPrediction(result));
  } catch (e) { clearResults(); showError(e.message); }
}

function renderPrediction(r) {
  const parts = [];
  const handled = new Set(["model", "task", "image", "resized"]);
  if (Array.isArray(r.top)) { parts.push(bars(r.top)); handled.add("top"); }
  if (Array.isArray(r.boxes ?? r.detections)) { parts.push(boxesView(r)); handled.add("boxes").add("detections").add("proposals").add("figure"); }
  if (r.mask !== undefined || r.shares !== undefined) { parts.push(maskView(r)); for (const k of ["mask", "overlay", "shares", "class_shares", "pixel_shares", "classes", "colors", "palette", "size"]) handled.add(k); }
  if (typeof r.caption === "string") { parts.push(captionView(r)); for (const k of ["caption", "beams", "attention", "words"]) handled.add(k); }
  for (const [k, v] of Object.entries(r)) {  // any other image the task returned
    if (!handled.has(k) && typeof v === "string" && v.startsWith("data:image/")) {
      parts.push(el("figure", {}, el("img", { src: v, alt: k }), el("figcaption", { text: k })));
      handled.add(k);
    }
  }
  const rest = Object.fromEntries(Object.entries(r).filter(([k]) => !handled.has(k)));
  if (Object.keys(rest).length) parts.push(el("pre", { text: JSON.stringify(rest, null, 1).slice(0, 4000) }));
  return [el("p", { class: "muted", text: `${r.task} · model ${r.model} · ${r.image}` }), ...parts];
}

function bars(top) {
  const grid = el("div", { class: "bars", "data-testid": "top" });
  for (const t of top) {
    grid.append(el("span", { class: "label", text: t.class }),
      el("div", {}, el("div", { class: "bar", style: `width:${(100 * t.prob).toFixed(1)}%` })),
      el("span", { class: "prob", text: t.prob.toFixed(3) }));
  }
  return grid;
}

function withImage(draw) {  // the input image with a canvas drawn over it at its natural size
  const img = el("img", { src: state.url, alt: state.name });
  const canvas = el("canvas", { class: "layer" });
  const box = el("div", { class: "stack" }, img, canvas);
  img.addEventListener("load", () => {
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    draw(canvas.getContext("2d"), img.naturalWidth, img.naturalHeight);
  });
  return box;
}

function boxesView(r) {
  const label = (b) => b.label ?? b.class ?? b.name ?? "";
  const scale = r.resized ? r.resized.from[1] / r.resized.to[1] : 1;  // boxes of a scaled-down upload
  const coords = (b) => (b.box ?? b.bbox ?? b.xyxy ?? [b.x1, b.y1, b.x2, b.y2]).map((v) => v * scale);
  const boxes = r.boxes ?? r.detections;
  const names = [...new Set(boxes.map(label))];
  const colour = (b) => PALETTE[names.indexOf(label(b)) % PALETTE.length];
  const view = withImage((ctx, w) => {
    ctx.lineWidth = Math.max(2, w / 250);
    ctx.font = `${Math.max(12, w / 40)}px sans-serif`;
    ctx.setLineDash([4, 4]);
    for (const b of r.proposals || []) { ctx.strokeStyle = "rgba(255,255,255,.6)"; const [x1, y1, x2, y2] = coords(b.box ? b : { box: b }); ctx.strokeRect(x1, y1, x2 - x1, y2 - y1); }
    ctx.setLineDash([]);
    for (const b of boxes) {
      const [x1, y1, x2, y2] = coords(b);
      ctx.strokeStyle = ctx.fillStyle = colour(b);
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      const text = `${label(b)} ${b.score !== undefined ? b.score.toFixed(2) : ""}`;
      ctx.fillRect(x1, y1 - parseInt(ctx.font) - 4, ctx.measureText(text).width + 6, parseInt(ctx.font) + 4);
      ctx.fillStyle = "#fff";
      ctx.fillText(text, x1 + 3, y1 - 4);
    }
  });
  return el("div", { "data-testid": "boxes" }, view, el("p", { class: "muted", text: `${boxes.length} boxes` }));
}

function hexToRgb(hex) { const n = parseInt(hex.slice(1), 16); return [n >> 16, (n >> 8) & 255, n & 255]; }

function maskView(r) {
  const shares = r.shares ?? r.class_shares ?? r.pixel_shares ?? {};
  const entries = Array.isArray(shares) ? shares.map((s) => [s.class ?? s.name, s.share ?? s.fraction]) : Object.entries(shares);
  const model = currentModel() || {};
  const classes = r.classes ?? model.classes ?? entries.map(([c]) => c);
  const colours = (r.colors ?? r.palette ?? model.colors ?? []).map((c) => (Array.isArray(c) ? c : hexToRgb(c)));
  const rgb = (i) => colours[i] ?? hexToRgb(PALETTE[i % PALETTE.length]);
  let view;
  if (typeof r.overlay === "string") {  // the mask already blended over the image by the task
    view = el("img", { src: r.overlay, alt: "mask overlay" });
  } else if (typeof r.mask === "string") {
    view = el("img", { src: r.mask, alt: "mask" });
  } else if (Array.isArray(r.mask)) {  // class ids (H, W)
    view = withImage((ctx, w, h) => {
      const mh = r.mask.length, mw = r.mask[0].length, data = ctx.createImageData(mw, mh);
      r.mask.forEach((row, y) => row.forEach((id, x) => {
        const [cr, cg, cb] = rgb(id), i = 4 * (y * mw + x);
        data.data.set([cr, cg, cb, 140], i);
      }));
      const tmp = el("canvas", { width: mw, height: mh });
      tmp.getContext("2d").putImageData(data, 0, 0);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(tmp, 0, 0, w, h);
    });
  } else {
    view = el("img", { src: state.url, alt: state.name });
  }
  const legend = el("div", { class: "legend" });
  for (const [name, share] of entries.sort((a, b) => b[1] - a[1])) {
    const [cr, cg, cb] = rgb(classes.indexOf(name));
    legend.append(el("span", {}, el("span", { class: "swatch", style: `background:rgb(${cr},${cg},${cb})` }),
      `${name} ${(100 * share).toFixed(1)}%`));
  }
  const parts = [view, legend];
  if (typeof r.overlay === "string" && typeof r.mask === "string") parts.push(el("img", { src: r.mask, alt: "mask and legend" }));
  return el("div", { "data-testid": "mask" }, ...parts);
}

function captionView(r) {
  const words = r.words ?? r.caption.split(/\s+/);
  const maps = Array.isArray(r.attention) ? r.attention.map((a) => (Array.isArray(a) ? a : a.map ?? a.attention ?? a.weights)) : [];
  const canvasHolder = el("div");
  const show = (i) => {
    sentence.querySelectorAll(".word").forEach((w, j) => w.classList.toggle("on", j === i));
    const map = maps[i];
    if (!map) return;
    canvasHolder.replaceChildren(withImage((ctx, w, h) => {
      const mh = map.length, mw = map[0].length, max = Math.max(...map.flat()) || 1;
      const data = ctx.createImageData(mw, mh);
      map.forEach((row, y) => row.forEach((v, x) => data.data.set([255, 255, 255, 255 * (1 - v / max) * .85], 4 * (y * mw + x))));
      const tmp = el("canvas", { width: mw, height: mh });
      tmp.getContext("2d").putImageData(data, 0, 0);
      ctx.drawImage(tmp, 0, 0, w, h);
    }));
  };
  const sentence = el("p", { class: "caption", "data-testid": "caption" },
    ...words.flatMap((w, i) => [el("span", { class: "word", text: w, onmouseenter: () => show(i), onclick: () => show(i) }), " "]));
  const parts = [sentence, canvasHolder];
  if (Array.isArray(r.beams) && r.beams.length) {
    parts.push(el("ol", {}, ...r.beams.map((b) => {
      const text = typeof b === "string" ? b : b.caption ?? b.text ?? (b.words || []).join(" ");
      const score = typeof b === "object" ? b.score ?? b.log_prob : undefined;
      return el("li", { text: score !== undefined ? `${text} (score ${Number(score).toFixed(3)})` : text });
    })));
  }
  if (typeof r.attention === "string") parts.push(el("figure", {}, el("img", { src: r.attention, alt: "attention" }),
    el("figcaption", { text: "where the decoder looked for each word" })));
  if (maps.length) show(0);
  return el("div", {}, ...parts);
}

// ------------------------------------------------------------------ explain
async function runExplain() {
  const out = $("explanation");
  out.replaceChildren(el("p", { class: "muted", text: "opening up the model..." }));
  try {
    const r = await api("/v1/explain", imageForm({ method: $("cam-method").value }));
    const cam = r.cam;
    const layerView = el("figure");
    const buttons = el("div", { class: "layers" });
    const pick = (i) => {
      const L = r.layers[i];
      buttons.querySelectorAll("button").forEach((b, j) => b.classList.toggle("on", i === j));
      const [c, h, w] = L.shape;
      const rf = L.receptive_field ? `, receptive field ${L.receptive_field}x${L.receptive_field} px` : "";
      layerView.replaceChildren(el("img", { src: L.image, class: "pixelated", alt: L.name }),
        el("figcaption", { text: `${L.name}: ${h} x ${w} x ${c}${rf}; the ${L.channels.length} most active channels` }));
    };
    r.layers.forEach((L, i) => buttons.append(el("button", { text: L.name, onclick: () => pick(i) })));
    out.replaceChildren(
      el("figure", { "data-testid": "cam" }, el("img", { src: cam.overlay, alt: "CAM overlay" }),
        el("figcaption", { text: `${cam.method} for "${cam.class}" (p = ${cam.prob.toFixed(3)}) at layer ${cam.layer}` })),
      el("h3", { text: "Feature maps, layer by layer" }), buttons, layerView,
      el("h3", { text: "First-layer filters" }), el("img", { src: r.figures.filters, alt: "filters" }));
    if (r.layers.length) pick(0);
  } catch (e) { out.replaceChildren(); showError(e.message); }
}

// ------------------------------------------------------------------ inside the model (CNN Explainer style)
async function loadArchitecture(name) {
  try {
    const arch = await api(`/v1/architecture?model=${encodeURIComponent(name)}`);
    if (($("model").value || "") !== name) return;
    state.arch = arch;
    const camLayers = [...arch.cam_layers];  // the default CAM layer may be the last conv's ReLU: offer it too
    if (!camLayers.some((c) => c.name === arch.cam_layer)) camLayers.push({ name: arch.cam_layer, label: `${arch.cam_layer_label} (default)` });
    $("cam-layer").replaceChildren(...camLayers.map((c) => el("option", { value: c.name, text: c.label, title: c.name })));
    $("cam-layer").value = arch.cam_layer;
    const fmt = (v) => (v === null || v === undefined ? "-" : String(v));
    $("arch").tBodies[0].replaceChildren(...arch.layers.map((L) => {
      const row = el("tr", { class: L.conv ? "conv" : "", "data-layer": L.name, title: L.name },
        el("td", { text: L.label }), el("td", { text: L.type }), el("td", { text: L.output.join(" x ") }),
        el("td", { class: "num", text: L.params.toLocaleString() }), el("td", { class: "num", text: fmt(L.receptive_field) }));
      if (L.conv) row.addEventListener("click", () => { state.layer = L.name; runInspect(); });
      return row;
    }));
  } catch (e) { showError(e.message); }
}

async function runInspect() {
  const m = currentModel();
  if (!state.image || !m || !m.explain || !state.arch) return;
  const extra = { cam_layer: $("cam-layer").value || "", target_class: $("cam-class").value || "" };
  if (state.layer) extra.layer = state.layer;
  const ticket = (runInspect.ticket = (runInspect.ticket || 0) + 1);
  try {
    const r = await api("/v1/inspect", imageForm(extra));
    if (ticket !== runInspect.ticket) return;  // a newer request is on its way
    state.inspected = r;
    showSeen(r);
    showCam(r);
    showLayer(r);
  } catch (e) { if (ticket === runInspect.ticket) { clearResults(); showError(e.message); } }
}

function showSeen(r) {
  const [c, h, w] = r.seen.shape;
  $("seen").src = r.seen.normalised;
  $("seen-caption").textContent = `what the model saw: resized to ${h}x${w}x${c}, normalised by mean ` +
    `${r.seen.mean.map((v) => v.toFixed(2)).join(",")} / std ${r.seen.std.map((v) => v.toFixed(2)).join(",")} ` +
    `(values ${r.seen.range[0].toFixed(2)}..${r.seen.range[1].toFixed(2)}; shown de-normalised)`;
  $("seen-box").hidden = false;
}

function showCam(r) {
  const picker = $("cam-class");
  const chosen = r.cam.class;
  const classes = r.prediction.map((p) => p.class);
  if (!classes.includes(chosen)) classes.push(chosen);
  picker.replaceChildren(...classes.map((name) => {
    const p = r.prediction.find((q) => q.class === name);
    return el("option", { value: name, text: p ? `${name} (p = ${p.prob.toFixed(3)})` : name });
  }));
  picker.value = chosen;
  $("cam-view").replaceChildren(el("figure", { "data-testid": "explainer-cam" },
    el("img", { src: r.cam.overlay, class: "pixelated", style: "width:224px", alt: "Grad-CAM overlay" }),
    el("figcaption", { text: `Grad-CAM for "${r.cam.class}" (p = ${r.cam.prob.toFixed(3)}) at ${r.cam.label}` })));
}

function showLayer(r) {
  document.querySelectorAll("#arch tr").forEach((tr) => tr.classList.toggle("on", tr.dataset.layer === state.layer));
  $("unit-view").replaceChildren();
  const L = r.layer;
  if (!L) { $("layer-view").replaceChildren(); return; }
  const [c, h, w] = L.shape;
  const grid = el("div", { class: "fmaps", "data-testid": "feature-maps" });
  L.maps.forEach((m) => grid.append(el("figure", {
    "data-channel": m.channel, title: `channel ${m.channel}: values ${m.min.toFixed(2)}..${m.max.toFixed(2)}`,
    onclick: (e) => { grid.querySelectorAll("figure").forEach((f) => f.classList.remove("on")); e.currentTarget.classList.add("on"); showUnit(L, m); },
  }, el("img", { src: m.image, alt: `channel ${m.channel}` }), el("figcaption", { text: `#${m.channel}` }))));
  $("layer-view").replaceChildren(el("p", { text: `${L.label} (${L.type}, ${L.kernel}x${L.kernel} kernels, stride ${L.stride}): ` +
    `${h} x ${w} x ${c}; receptive field ${L.receptive_field} px; the ${L.maps.length} most active maps. Click one.` }), grid);
}

function heat(values, cell = 22) {  // a k x k kernel as a diverging heat map: red positive, blue negative
  const k = values.length, kw = values[0].length;
  const max = Math.max(1e-12, ...values.flat().map(Math.abs));
  const canvas = el("canvas", { class: "kernel", width: kw * cell, height: k * cell, title: values.map((r) => r.map((v) => v.toFixed(3)).join(" ")).join("\n") });
  const ctx = canvas.getContext("2d");
  values.forEach((row, y) => row.forEach((v, x) => {
    const t = Math.min(1, Math.abs(v) / max), c = Math.round(255 * (1 - t));
    ctx.fillStyle = v >= 0 ? `rgb(255,${c},${c})` : `rgb(${c},${c},255)`;
    ctx.fillRect(x * cell, y * cell, cell, cell);
  }));
  return canvas;
}

function showUnit(L, m) {  // the kernel that made map m, and the input patch under the cursor
  const [, h, w] = L.shape;
  const seen = state.inspected.seen, [, H, W] = seen.shape;
  const kernels = el("div", { class: "kernels", "data-testid": "kernel" },
    el("figure", {}, heat(m.kernel_sum), el("figcaption", { text: `summed over ${m.in_channels} input channel(s)` })),
    ...m.kernel_first.map((k, i) => el("figure", {}, heat(k), el("figcaption", { text: `input channel ${i}` }))));
  const sm = Math.max(1, Math.floor(192 / Math.max(h, w))), ss = Math.max(1, Math.floor(192 / Math.max(H, W)));  // drawn enlarged
  const mapCanvas = el("canvas", { id: "unit-map", width: w * sm, height: h * sm, title: "move over the map: the input patch this position sees" });
  const seenCanvas = el("canvas", { class: "window", width: W * ss, height: H * ss, "data-testid": "seen-window" });
  const patch = el("canvas", { class: "patch", width: 1, height: 1, "data-testid": "patch" });
  const where = el("p", { class: "muted", "data-testid": "patch-info" });
  const mapImg = new Image(), seenImg = new Image();
  mapImg.src = m.image;
  seenImg.src = seen.normalised;
  const show = (y, x) => {  // map position (y, x) -> its receptive field in the model's input
    const rf = L.receptive_field, jump = L.jump;
    const cy = (y + 0.5) * jump - 0.5, cx = (x + 0.5) * jump - 0.5;  // the cell's centre in input pixels
    const y0 = Math.max(0, Math.round(cy - (rf - 1) / 2)), x0 = Math.max(0, Math.round(cx - (rf - 1) / 2));
    const y1 = Math.min(H, Math.round(cy - (rf - 1) / 2) + rf), x1 = Math.min(W, Math.round(cx - (rf - 1) / 2) + rf);
    const mc = mapCanvas.getContext("2d");
    mc.imageSmoothingEnabled = false;
    mc.drawImage(mapImg, 0, 0, w * sm, h * sm);
    mc.strokeStyle = "#f00"; mc.lineWidth = 2;
    mc.strokeRect(x * sm + 1, y * sm + 1, sm - 2, sm - 2);
    const sc = seenCanvas.getContext("2d");
    sc.imageSmoothingEnabled = false;
    sc.drawImage(seenImg, 0, 0, W * ss, H * ss);
    sc.strokeStyle = "#f00"; sc.lineWidth = 2;
    sc.strokeRect(x0 * ss + 1, y0 * ss + 1, (x1 - x0) * ss - 2, (y1 - y0) * ss - 2);
    patch.width = x1 - x0; patch.height = y1 - y0;
    const pc = patch.getContext("2d");
    pc.imageSmoothingEnabled = false;
    pc.drawImage(seenImg, x0, y0, x1 - x0, y1 - y0, 0, 0, x1 - x0, y1 - y0);
    where.textContent = `position (${y}, ${x}) of ${h}x${w}: sees input rows ${y0}..${y1 - 1}, columns ${x0}..${x1 - 1} ` +
      `(receptive field ${rf} px, ${jump} px between positions)`;
  };
  mapCanvas.addEventListener("mousemove", (e) => {
    const r = mapCanvas.getBoundingClientRect();
    show(Math.min(h - 1, Math.floor((e.clientY - r.top) * h / r.height)), Math.min(w - 1, Math.floor((e.clientX - r.left) * w / r.width)));
  });
  let loaded = 0;
  const ready = () => { if (++loaded === 2) show(Math.floor(h / 2), Math.floor(w / 2)); };
  mapImg.onload = ready;
  seenImg.onload = ready;
  $("unit-view").replaceChildren(
    el("div", {}, el("h3", { text: `The kernel that made map #${m.channel}` }), kernels),
    el("div", {}, el("h3", { text: "The sliding window" }), el("div", { class: "maps" },
      el("figure", {}, mapCanvas, el("figcaption", { text: `map #${m.channel} (move the cursor)` })),
      el("figure", {}, seenCanvas, el("figcaption", { text: "the model's input" })),
      el("figure", {}, patch, el("figcaption", { text: "the patch under the cursor" }))), where));
}

// ------------------------------------------------------------------ convolution explorer
async function setupKernels() {
  const kernels = await api("/v1/kernels");
  const preset = $("preset");
  preset.replaceChildren(...Object.keys(kernels).filter((k) => kernels[k].length === 3 && kernels[k][0].length === 3)
    .map((k) => el("option", { value: k, text: k })));
  const table = $("kernel");
  table.replaceChildren(...[0, 1, 2].map((r) => el("tr", {}, ...[0, 1, 2].map((c) =>
    el("td", {}, el("input", { type: "number", step: "any", "data-rc": `${r}${c}`, oninput: () => schedule() }))))));
  const fill = () => {
    kernels[preset.value].forEach((row, r) => row.forEach((v, c) => {
      document.querySelector(`[data-rc="${r}${c}"]`).value = Number(v.toFixed(4));
    }));
    schedule();
  };
  preset.value = "edge";
  preset.addEventListener("change", fill);
  fill();
}

function kernelText() {
  return [0, 1, 2].map((r) => [0, 1, 2].map((c) => document.querySelector(`[data-rc="${r}${c}"]`).value || "0").join(",")).join(";");
}

function schedule() { clearTimeout(schedule.timer); if (state.image) schedule.timer = setTimeout(runConvolve, 300); }

async function runConvolve() {
  if (!state.image) return;
  const out = $("convolution");
  try {
    const extra = { kernel: kernelText(), stride: $("stride").value || "1" };
    if ($("padding").value !== "") extra.padding = $("padding").value;
    const form = imageForm(extra);
    form.delete("model");
    const r = await api("/v1/convolve", form);
    const m = r.feature_maps[0];
    const resized = r.input.resized_from ? ` (from ${r.input.resized_from.join("x")})` : "";
    out.replaceChildren(el("div", { class: "maps" },
      el("figure", {}, el("img", { src: r.input.image, alt: "input" }), el("figcaption", { text: `input ${r.input.shape.join("x")}${resized}` })),
      el("figure", { "data-testid": "feature-map" }, el("img", { src: m.image, alt: "feature map" }),
        el("figcaption", { text: `feature map ${m.shape.join("x")}, stride ${r.stride}, padding ${r.padding}; values ${m.min.toFixed(2)} .. ${m.max.toFixed(2)}` }))));
  } catch (e) { out.replaceChildren(); showError(e.message); }
}

// ------------------------------------------------------------------ start
window.addEventListener("DOMContentLoaded", async () => {
  setupInput();
  $("run-predict").addEventListener("click", runPredict);
  $("run-explain").addEventListener("click", runExplain);
  $("run-convolve").addEventListener("click", runConvolve);
  for (const id of ["cam-class", "cam-layer"]) $(id).addEventListener("change", runInspect);
  for (const id of ["stride", "padding"]) $(id).addEventListener("input", schedule);
  try { await Promise.all([loadModels(), setupKernels()]); } catch (e) { showError(e.message); }
});
