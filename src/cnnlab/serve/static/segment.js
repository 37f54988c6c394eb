// Segmentation: the mask over the image at its shown size, with a legend (class toggles and shares),
// an opacity slider, the class and its probability under the pointer, and (with the image's
// ground-truth mask dropped too) this image's IoU per class.
"use strict";

function maskView(r) {
  const out = el("div", { "data-testid": "segmentation" }, el("p", { class: "muted", text: "drawing the mask..." }));
  loadMask(r, out);
  return out;
}

async function loadMask(r, out) {
  const ticket = { view: "predict", rid: state.rid, n: state.views.predict };  // the prediction it belongs to
  try {
    const m = await api("/v1/mask", imageForm());
    const [mask, prob] = await Promise.all([greyPixels(m.mask), greyPixels(m.probability)]);
    if (!fresh(ticket)) return;
    out.replaceChildren(...maskParts(r, m, mask, prob), truthParts(m));
    if (state.truth && state.truth.rid === state.rid) scoreTruth(state.truth.file, $("truth-result"));  // dropped with the image
  } catch (e) { failed(ticket, e, out); }
}

async function greyPixels(src) {  // a grey PNG -> {w, h, ids: Uint8Array} (its values 0..255)
  const img = await loadImage(src);
  const c = el("canvas", { width: img.naturalWidth, height: img.naturalHeight }), ctx = c.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const px = ctx.getImageData(0, 0, c.width, c.height).data, ids = new Uint8Array(c.width * c.height);
  for (let i = 0; i < ids.length; i++) ids[i] = px[4 * i];
  return { w: c.width, h: c.height, ids };
}

function maskParts(r, m, mask, prob) {
  if (!state.shown) return [el("p", { class: "muted", text: "the browser cannot show this image" })];
  const shown = overImage("mask", 640);
  const rgb = (i) => m.colors[i] || [255, 0, 255];
  const on = new Set(m.classes.map((_, i) => i));
  const small = el("canvas", { width: mask.w, height: mask.h });
  const opacity = el("input", { type: "range", id: "mask-opacity", min: 0, max: 1, step: 0.05, value: (currentModel().options || {}).alpha ?? 0.5 });
  const hover = el("p", { class: "muted", "data-testid": "mask-hover", text: "point at the image: the class there and its probability" });
  const draw = () => {
    const sctx = small.getContext("2d"), data = sctx.createImageData(mask.w, mask.h);
    const a = Math.round(255 * Number(opacity.value));
    mask.ids.forEach((id, i) => { if (on.has(id)) data.data.set([...rgb(id), a], 4 * i); });
    sctx.putImageData(data, 0, 0);
    const ctx = shown.canvas.getContext("2d");
    ctx.clearRect(0, 0, shown.w, shown.h);
    ctx.imageSmoothingEnabled = false;  // class boundaries stay sharp: each pixel has one class
    ctx.drawImage(small, 0, 0, shown.w, shown.h);
  };
  shown.canvas.addEventListener("mousemove", (e) => {
    const b = shown.canvas.getBoundingClientRect();
    const x = Math.min(mask.w - 1, Math.floor((e.clientX - b.left) * mask.w / b.width));
    const y = Math.min(mask.h - 1, Math.floor((e.clientY - b.top) * mask.h / b.height));
    const i = y * mask.w + x;
    hover.textContent = `(${x}, ${y}): ${m.classes[mask.ids[i]]}, p = ${(prob.ids[i] / 255).toFixed(2)}`;
  });
  opacity.addEventListener("input", draw);
  const shares = r.shares || {};
  const key = el("div", { class: "legend", "data-testid": "mask-legend" }, ...m.classes.map((name, i) => {
    const box = el("input", { type: "checkbox", "data-class": name });
    box.checked = true;
    box.addEventListener("change", () => { if (box.checked) on.add(i); else on.delete(i); draw(); });
    const [cr, cg, cb] = rgb(i);
    return el("label", { class: shares[name] ? "" : "muted" }, box,
      el("span", { class: "swatch", style: `background:rgb(${cr},${cg},${cb})` }), `${name} ${(100 * (shares[name] || 0)).toFixed(1)}%`);
  }));
  draw();
  return [el("label", { class: "slider" }, "mask opacity ", opacity), key,
    el("figure", {}, shown.box, el("figcaption", { class: "muted", text: `${r.image}: ${mask.w}x${mask.h} mask, drawn at ${shown.w}x${shown.h}` })),
    hover];
}

// ------------------------------------------------------------------ the image's own ground truth: IoU per class
function truthParts(m) {
  const out = el("div", { class: "result", id: "truth-result", "data-testid": "truth-view" });
  const input = el("input", { type: "file", id: "truth-file", accept: "image/png,image/*", hidden: "" });
  const zone = el("div", { class: "drop small", tabindex: 0, "data-testid": "truth-drop" },
    `Drop ${m.image}'s ground-truth mask here (a PNG of class ids 0..${m.classes.length - 1}; or drop both files at once above), or `,
    el("label", { class: "link" }, "pick it", input), ": the IoU of each class on this image.");
  const score = (file) => { if (file) scoreTruth(file, out); };
  input.addEventListener("change", (e) => { score(e.target.files[0]); e.target.value = ""; });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); score(e.dataTransfer.files[0]); });
  return el("div", {}, zone, out);
}

async function scoreTruth(file, out) {
  const ticket = begin("truth");
  out.replaceChildren(el("p", { class: "muted", text: `scoring against ${file.name}...` }));
  try {
    const form = imageForm();
    form.append("truth", file, file.name);
    const m = await api("/v1/mask", form);
    if (!fresh(ticket)) return;
    clearError();
    out.replaceChildren(...iouParts(m));
    tagged(out, m.image);
  } catch (e) { failed(ticket, e, out); }
}

function iouParts(m) {
  const t = m.truth, pct = (v) => (v === null ? "-" : `${(100 * v).toFixed(1)}%`);
  const rows = m.classes.map((name, i) => {
    const c = t.per_class[name], predicted = t.confusion_matrix.reduce((s, row) => s + row[i], 0);
    const [cr, cg, cb] = m.colors[i] || [255, 0, 255];
    return el("tr", { "data-class": name }, el("td", {}, el("span", { class: "swatch", style: `background:rgb(${cr},${cg},${cb})` }), ` ${name}`),
      el("td", { class: "num iou", text: pct(c.iou) }), el("td", { class: "num", text: c.pixels.toLocaleString() }),
      el("td", { class: "num", text: predicted.toLocaleString() }), el("td", { class: "num", text: t.confusion_matrix[i][i].toLocaleString() }));
  });
  const head = el("tr", {}, ...["class", "IoU", "true pixels", "predicted", "both"].map((h) => el("th", { text: h })));
  const notes = [t.resized ? "the mask was resized (nearest) to the image's size" : "",
    t.ignored ? `${t.ignored.toLocaleString()} unlabelled pixels (255) left out` : ""].filter(Boolean).join("; ");
  return [el("p", { "data-testid": "miou", text: `${m.image} against ${t.name}: mean IoU ${pct(t.miou)} over the classes present, ` +
      `pixel accuracy ${pct(t.pixel_acc)} (${t.pixels.toLocaleString()} labelled pixels)${notes ? `; ${notes}` : ""}` }),
    el("p", { class: "muted", text: "IoU = pixels both call this class / pixels either calls it; '-' where neither does." }),
    el("table", { class: "grid", "data-testid": "iou-table" }, el("thead", {}, head), el("tbody", {}, ...rows))];
}
