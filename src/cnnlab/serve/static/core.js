// cnnlab's page, the shared core: one state, one image, request ids, errors in words, one colour map.
// Every view draws results for the image on screen only: a new image (or model) bumps state.rid and
// clears every result; a reply for an older rid, or an older request of the same view, is dropped.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  image: null, name: "", url: null, models: [], arch: null, rid: 0, views: {}, dropped: 0,
  shown: null,  // the decoded image on screen (HTMLImageElement) or null when the browser cannot show it
};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function currentModel() { return state.models.find((m) => m.name === $("model").value); }

// ------------------------------------------------------------------ requests: ids, stale replies dropped
function begin(view) {  // a ticket for one request of `view` about the image on screen now
  state.views[view] = (state.views[view] || 0) + 1;
  return { view, rid: state.rid, n: state.views[view] };
}

function fresh(ticket) {  // still the newest request of its view, about the image still on screen?
  const ok = ticket.rid === state.rid && ticket.n === state.views[ticket.view];
  if (!ok) state.dropped += 1;
  return ok;
}

class ApiError extends Error {}

async function api(path, form) {
  let response;
  try {
    response = await fetch(path, form ? { method: "POST", body: form } : {});
  } catch {
    throw new ApiError("the service did not answer: is `cnnlab serve` still running?");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(words(response.status, body.detail));
  return body;
}

function words(status, detail) {  // the service's one-line detail, without the HTTP code
  if (detail) return detail;
  return { 404: "Not found on this service", 408: "The upload was too slow", 413: "The file is too large",
    415: "This file is not an image the service can read", 503: "The service is busy; try again in a moment" }[status]
    || "The service could not answer this request";
}

function imageForm(extra = {}) {
  const form = new FormData();
  form.append("file", state.image, state.name);
  form.append("model", $("model").value);
  for (const [k, v] of Object.entries(extra)) form.append(k, v);
  return form;
}

// ------------------------------------------------------------------ errors: in words, in place, dismissible
function showError(message, ticket) {
  if (ticket && !fresh(ticket)) return;
  $("error-text").textContent = message;
  $("error").hidden = false;
}

function clearError() { $("error").hidden = true; $("error-text").textContent = ""; }

function failed(ticket, e, ...outs) {  // a request failed: its view shows nothing, the error says why
  if (!fresh(ticket)) return;
  for (const out of outs) out.replaceChildren();
  showError(e instanceof ApiError ? e.message : `The page failed: ${e.message}`);
}

function tagged(out, name) {  // every result names the image it is about
  out.dataset.image = name;
  return out;
}

// ------------------------------------------------------------------ one colour map for every map
// viridis (matplotlib), 17 stops, interpolated to 256 entries
const VIRIDIS = [[68, 1, 84], [72, 24, 106], [71, 45, 123], [66, 64, 134], [59, 82, 139], [51, 99, 141],
  [44, 114, 142], [38, 130, 142], [33, 145, 140], [31, 160, 136], [40, 174, 128], [63, 188, 115], [94, 201, 98],
  [132, 212, 75], [173, 220, 48], [216, 226, 25], [253, 231, 37]];
const LUT = Array.from({ length: 256 }, (_, v) => {
  const t = (v / 255) * 16, i = Math.min(15, Math.floor(t)), f = t - i;
  return VIRIDIS[i].map((a, c) => Math.round(a + (VIRIDIS[i + 1][c] - a) * f));
});

function colourise(ctx, w, h, alpha) {  // grey values in the canvas -> viridis; alpha(v): 0..255 or null
  const data = ctx.getImageData(0, 0, w, h), px = data.data;
  for (let i = 0; i < px.length; i += 4) {
    const v = px[i], [r, g, b] = LUT[v];
    px[i] = r; px[i + 1] = g; px[i + 2] = b;
    px[i + 3] = alpha ? alpha(v) : 255;
  }
  ctx.putImageData(data, 0, 0);
}

function legend(low = "low", high = "high", what = "activation") {  // the colour map's key
  const bar = el("canvas", { class: "legend-bar", width: 256, height: 1 });
  const ctx = bar.getContext("2d"), data = ctx.createImageData(256, 1);
  LUT.forEach(([r, g, b], i) => data.data.set([r, g, b, 255], 4 * i));
  ctx.putImageData(data, 0, 0);
  return el("div", { class: "cmap", "data-testid": "legend" }, el("span", { text: low }), bar, el("span", { text: high }),
    el("span", { class: "muted", text: what }));
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("unreadable image"));
    img.src = src;
  });
}

// A map (grey PNG data URL, any size) upsampled smoothly to the canvas's size and coloured
async function paintMap(canvas, src, alpha) {
  const img = await loadImage(src);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  colourise(ctx, canvas.width, canvas.height, alpha);
}

// ------------------------------------------------------------------ the image on screen, with a layer over it
function displaySize(maxW = 480, maxH = 420) {  // the size results draw the image at (small ones enlarged)
  const img = state.shown;
  if (!img) return null;
  const w0 = img.naturalWidth, h0 = img.naturalHeight;
  const scale = Math.min(maxW / w0, maxH / h0, Math.max(1, 320 / Math.max(w0, h0)));
  return [Math.max(1, Math.round(w0 * scale)), Math.max(1, Math.round(h0 * scale))];
}

function overImage(testid, maxW) {  // {box, img, canvas, w, h}: the image shown with a canvas of its size on top
  const [w, h] = displaySize(maxW);
  const small = Math.max(state.shown.naturalWidth, state.shown.naturalHeight) < 64;
  const img = el("img", { src: state.url, alt: state.name, width: w, height: h, class: small ? "pixelated" : "" });
  const canvas = el("canvas", { class: "layer", width: w, height: h, "data-testid": testid });
  const box = el("div", { class: "stack", style: `width:${w}px;height:${h}px` }, img, canvas);
  return { box, img, canvas, w, h };
}
