// Segmentation: the mask over the image at its shown size, with a legend (class toggles and shares),
// an opacity slider, and the class under the pointer.
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
    const ids = await maskIds(m.mask);
    if (!fresh(ticket)) return;
    out.replaceChildren(...maskParts(r, m, ids));
  } catch (e) { failed(ticket, e, out); }
}

async function maskIds(src) {  // the class-id PNG -> {w, h, ids: Uint8Array}
  const img = await loadImage(src);
  const c = el("canvas", { width: img.naturalWidth, height: img.naturalHeight }), ctx = c.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const px = ctx.getImageData(0, 0, c.width, c.height).data, ids = new Uint8Array(c.width * c.height);
  for (let i = 0; i < ids.length; i++) ids[i] = px[4 * i];
  return { w: c.width, h: c.height, ids };
}

function maskParts(r, m, mask) {
  if (!state.shown) return [el("p", { class: "muted", text: "the browser cannot show this image" })];
  const shown = overImage("mask", 640);
  const rgb = (i) => m.colors[i] || [255, 0, 255];
  const on = new Set(m.classes.map((_, i) => i));
  const small = el("canvas", { width: mask.w, height: mask.h });
  const opacity = el("input", { type: "range", id: "mask-opacity", min: 0, max: 1, step: 0.05, value: (currentModel().options || {}).alpha ?? 0.5 });
  const hover = el("p", { class: "muted", "data-testid": "mask-hover", text: "point at the image: the class there" });
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
    hover.textContent = `(${x}, ${y}): ${m.classes[mask.ids[y * mask.w + x]]}`;
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
