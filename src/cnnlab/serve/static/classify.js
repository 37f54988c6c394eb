// Classification: the top-k bars, one explain panel (Grad-CAM / Grad-CAM++ / saliency over the image,
// class and layer pickers) and the network's layers with their feature maps and kernels.
"use strict";

function topView(r) {
  const grid = el("div", { class: "bars", "data-testid": "top" });
  for (const t of r.top) {
    grid.append(el("span", { class: "label", text: t.class }),
      el("div", {}, el("div", { class: "bar", style: `width:${(100 * t.prob).toFixed(1)}%` })),
      el("span", { class: "prob", text: t.prob.toFixed(3) }));
  }
  return grid;
}

// ------------------------------------------------------------------ explain: one CAM, over the image
const METHOD_NAMES = { gradcam: "Grad-CAM", "gradcam++": "Grad-CAM++", saliency: "saliency" };

function setupExplain() {
  $("cam-method").addEventListener("change", () => runInspect());
  $("cam-class").addEventListener("change", () => runInspect());
  $("cam-layer").addEventListener("change", () => runInspect());
  $("overview-order").addEventListener("change", () => runNetwork());
}

async function loadArchitecture(name) {  // the model's, whatever image is on screen meanwhile
  const current = () => $("model").value === name;
  try {
    const arch = await api(`/v1/architecture?model=${encodeURIComponent(name)}`);
    if (!current()) return;
    state.arch = arch;
    state.layer = null;
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
  } catch (e) { if (current()) showError(e.message); }
}

async function runInspect() {
  const m = currentModel();
  if (!state.image || !m || !m.explain || !state.arch) return;
  const ticket = begin("inspect");
  const extra = { method: $("cam-method").value, cam_layer: $("cam-layer").value || "", target_class: $("cam-class").value || "" };
  if (state.layer) extra.layer = state.layer;
  try {
    const r = await api("/v1/inspect", imageForm(extra));
    if (!fresh(ticket)) return;
    clearError();
    state.inspected = r;
    showCam(r);
    showLayer(r);
  } catch (e) { failed(ticket, e, $("cam-view"), $("layer-view"), $("unit-view")); }
}

function showCam(r) {
  const picker = $("cam-class");
  const classes = r.prediction.map((p) => p.class);
  if (!classes.includes(r.cam.class)) classes.push(r.cam.class);
  picker.replaceChildren(...classes.map((name) => {
    const p = r.prediction.find((q) => q.class === name);
    return el("option", { value: name, text: p ? `${name} (p = ${p.prob.toFixed(3)})` : name });
  }));
  picker.value = r.cam.class;
  $("cam-layer").value = r.cam.layer;
  const method = METHOD_NAMES[r.cam.method] || r.cam.method;
  const where = r.cam.method === "saliency" ? "at the input pixels" : `at layer ${r.cam.label}`;
  const shown = state.shown ? overImage("cam") : null;
  const [c, h, w] = r.seen.shape;
  const seen = el("figure", { class: "seen", "data-testid": "seen" },
    el("img", { src: r.seen.normalised, class: "pixelated", alt: "what the model saw", width: 96 }),
    el("figcaption", { class: "muted", text: `what the model saw: resized to ${h}x${w}x${c}, normalised by mean ` +
      `${r.seen.mean.map((v) => v.toFixed(2)).join(",")} / std ${r.seen.std.map((v) => v.toFixed(2)).join(",")} (shown de-normalised)` }));
  const figure = el("figure", { "data-testid": "explainer-cam" }, ...(shown ? [shown.box] : []),
    el("figcaption", { text: `${method} for "${r.cam.class}" (p = ${r.cam.prob.toFixed(3)}) ${where} · image ${r.image}` }));
  $("cam-view").replaceChildren(el("div", { class: "row top" }, figure, seen),
    legend("0", "1", `${method}: how much each pixel counts for "${r.cam.class}"`));
  tagged($("cam-view"), r.image);
  if (shown) paintMap(shown.canvas, r.cam.heatmap, (v) => Math.round(0.8 * v)).catch(() => {});
}

// ------------------------------------------------------------------ the network: a layer's maps, a map's kernel
function showLayer(r) {
  document.querySelectorAll("#arch tr").forEach((tr) => tr.classList.toggle("on", tr.dataset.layer === state.layer));
  $("unit-view").replaceChildren();
  const L = r.layer;
  if (!L) { $("layer-view").replaceChildren(); return; }
  const [c, h, w] = L.shape;
  const grid = el("div", { class: "fmaps", "data-testid": "feature-maps" });
  for (const m of L.maps) {
    const canvas = el("canvas", { width: 64, height: 64, class: "fmap", "aria-label": `channel ${m.channel}` });
    grid.append(el("figure", {
      "data-channel": m.channel, title: `channel ${m.channel}: values ${m.min.toFixed(2)}..${m.max.toFixed(2)}`,
      onclick: (e) => { grid.querySelectorAll("figure").forEach((f) => f.classList.remove("on")); e.currentTarget.classList.add("on"); showUnit(L, m); },
    }, canvas, el("figcaption", { text: `#${m.channel}` })));
    paintPixels(canvas, m.image).catch(() => {});
  }
  $("layer-view").replaceChildren(el("p", { text: `${L.label} (${L.type}, ${L.kernel}x${L.kernel} kernels, stride ${L.stride}): ` +
    `${h} x ${w} x ${c}; receptive field ${L.receptive_field} px; the ${L.maps.length} most active maps for image ${r.image}. Click one.` }),
  legend("min", "max", "each map scaled to its own range"), grid);
  tagged($("layer-view"), r.image);
}

async function paintPixels(canvas, src) {  // a feature map, one cell per unit (no smoothing), coloured
  const img = await loadImage(src);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  colourise(ctx, canvas.width, canvas.height, null);
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
  const mapImg = el("canvas", { width: w, height: h });
  const seenImg = new Image();
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
  Promise.all([paintPixels(mapImg, m.image), new Promise((ok) => { seenImg.onload = ok; })])
    .then(() => show(Math.floor(h / 2), Math.floor(w / 2))).catch(() => {});
  $("unit-view").replaceChildren(
    el("div", {}, el("h3", { text: `The kernel that made map #${m.channel}` }), kernels,
      el("p", { class: "muted", text: "red: positive weights, blue: negative" })),
    el("div", {}, el("h3", { text: "The sliding window" }), el("div", { class: "maps" },
      el("figure", {}, mapCanvas, el("figcaption", { text: `map #${m.channel} (move the cursor)` })),
      el("figure", {}, seenCanvas, el("figcaption", { text: "the model's input" })),
      el("figure", {}, patch, el("figcaption", { text: "the patch under the cursor" }))), where));
  tagged($("unit-view"), state.name);
}
