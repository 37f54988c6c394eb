// The image: a file, a drop, or the drawing pad (made the way MNIST was made).
"use strict";

async function setImage(blob, name) {
  state.rid += 1;  // every reply about the previous image is stale from now on
  const rid = state.rid;
  clearResults();
  clearError();
  state.image = blob;
  state.name = name;
  state.shown = null;
  if (state.url) URL.revokeObjectURL(state.url);
  state.url = URL.createObjectURL(blob);
  $("no-image").hidden = true;
  $("preview-box").hidden = true;
  let img = null;
  try { img = await loadImage(state.url); } catch { img = null; }
  if (rid !== state.rid) return;
  state.shown = img;
  if (img) {
    const preview = $("preview");
    preview.src = state.url;
    preview.classList.toggle("pixelated", Math.max(img.naturalWidth, img.naturalHeight) < 64);
    $("preview-name").textContent = `${name} · ${img.naturalWidth}x${img.naturalHeight}`;
    $("preview-box").hidden = false;
  } else {
    $("no-image").hidden = false;
    $("no-image").textContent = `${name}: the browser cannot show this file`;
  }
  runAll();
}

function setupInput() {
  $("file").addEventListener("change", (e) => { const f = e.target.files[0]; if (f) setImage(f, f.name); e.target.value = ""; });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const [image, truth] = imageAndMask([...e.dataTransfer.files]);
    if (!image) return;
    setImage(image, image.name);
    state.truth = truth ? { file: truth, rid: state.rid } : null;  // segmentation scores it once its mask is drawn
  });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") $("file").click(); });
  setupPad();
}

// Two files dropped at once: an image and its ground-truth mask (the one named like a mask, else the second)
function imageAndMask(files) {
  if (files.length < 2) return [files[0], null];
  const maskLike = (f) => /(^|[_\-. ])(mask|masks|label|labels|gt|truth|annotation)([_\-. ]|$)/i.test(f.name);
  const mask = files.find(maskLike) || files[1];
  return [files.find((f) => f !== mask), mask];
}

// ------------------------------------------------------------------ the drawing pad
function setupPad() {
  const pad = $("pad"), ctx = pad.getContext("2d", { willReadFrequently: true });
  const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, pad.width, pad.height); };
  clear();
  let drawing = false;
  const at = (e) => {
    const r = pad.getBoundingClientRect();
    return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height];
  };
  pad.addEventListener("pointerdown", (e) => {
    drawing = true;
    Object.assign(ctx, { lineWidth: pad.width / 11, lineCap: "round", lineJoin: "round", strokeStyle: "#fff" });
    ctx.beginPath();
    ctx.moveTo(...at(e));
    ctx.lineTo(...at(e));
    ctx.stroke();
  });
  pad.addEventListener("pointermove", (e) => { if (drawing) { ctx.lineTo(...at(e)); ctx.stroke(); } });
  for (const ev of ["pointerup", "pointerleave"]) pad.addEventListener(ev, () => { drawing = false; });
  $("clear-drawing").addEventListener("click", clear);
  $("use-drawing").addEventListener("click", () => {
    const side = (currentModel() || { input_shape: [1, 28, 28] }).input_shape.slice(1);
    const digit = mnistLike(ctx.getImageData(0, 0, pad.width, pad.height), side[0], side[1]);
    if (!digit) { showError("Draw a digit on the black pad first"); return; }
    digit.toBlob((b) => setImage(b, "drawing.png"), "image/png");
  });
}

// The drawing as MNIST digits were made: crop to the ink's bounding box, scale its longer side to
// the digit box (20 of 28 pixels; the whole frame for small inputs such as 8x8, as scikit-learn's
// digits fill theirs) with area averaging (anti-aliasing), then centre the ink's mass in the frame
// (as far as the frame allows).
function mnistLike(data, h, w) {
  const W = data.width, H = data.height, px = data.data;
  let x0 = W, y0 = H, x1 = -1, y1 = -1;
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    if (px[4 * (y * W + x)] > 0) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  }
  if (x1 < 0) return null;
  const cw = x1 - x0 + 1, ch = y1 - y0 + 1;
  const box = Math.min(h, w) >= 20 ? Math.round(Math.min(h, w) * 20 / 28) : Math.min(h, w);
  const s = box / Math.max(cw, ch);  // target pixels per pad pixel
  const tw = Math.max(1, Math.round(cw * s)), th = Math.max(1, Math.round(ch * s));
  const small = areaResize(px, W, x0, y0, cw, ch, tw, th);
  let mass = 0, my = 0, mx = 0;
  small.forEach((v, i) => { mass += v; my += v * Math.floor(i / tw); mx += v * (i % tw); });
  const clamp = (v, hi) => Math.max(0, Math.min(hi, v));  // never pushes ink out of the frame
  const top = clamp(Math.round((h - 1) / 2 - my / mass), h - th), left = clamp(Math.round((w - 1) / 2 - mx / mass), w - tw);
  const peak = Math.max(...small) || 1;
  const out = el("canvas", { width: w, height: h }), octx = out.getContext("2d");
  const img = octx.createImageData(w, h);
  for (let i = 0; i < w * h; i++) img.data.set([0, 0, 0, 255], 4 * i);
  small.forEach((v, i) => {
    const y = top + Math.floor(i / tw), x = left + (i % tw);
    if (y < 0 || y >= h || x < 0 || x >= w) return;
    const g = Math.round(255 * v / peak);  // full contrast, as the datasets' digits have
    img.data.set([g, g, g, 255], 4 * (y * w + x));
  });
  octx.putImageData(img, 0, 0);
  return out;
}

function areaResize(px, W, x0, y0, cw, ch, tw, th) {  // mean of the red channel over each target cell
  const out = new Float32Array(tw * th);
  for (let ty = 0; ty < th; ty++) for (let tx = 0; tx < tw; tx++) {
    const ya = y0 + ty * ch / th, yb = y0 + (ty + 1) * ch / th, xa = x0 + tx * cw / tw, xb = x0 + (tx + 1) * cw / tw;
    let sum = 0, area = 0;
    for (let y = Math.floor(ya); y < Math.ceil(yb); y++) {
      const fy = Math.min(yb, y + 1) - Math.max(ya, y);
      for (let x = Math.floor(xa); x < Math.ceil(xb); x++) {
        const f = fy * (Math.min(xb, x + 1) - Math.max(xa, x));
        sum += f * px[4 * (y * W + x)];
        area += f;
      }
    }
    out[ty * tw + tx] = sum / area;
  }
  return out;
}
