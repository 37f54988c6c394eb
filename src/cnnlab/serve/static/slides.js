// The lecture's first slides, interactive: the image on screen as the numbers a computer sees (the
// Lincoln slide: point at a pixel, its values and its neighbours'), and "X or X?": two 9x9 images of
// an X, the three 3x3 filters, each filter's feature map (point at a value: the patch and the sum
// that made it), then ReLU and 2x2 max pooling.
"use strict";

// ------------------------------------------------------------------ images are numbers
const GRID_ROWS = 10, GRID_COLS = 12;  // the numbers shown around the pointer, as many as the slide has

async function runPixels() {
  if (!state.image) return;
  const ticket = begin("pixels"), out = $("pixels-view");
  try {
    const r = await api("/v1/pixels", imageForm());
    if (!fresh(ticket)) return;
    const img = await loadImage(r.pixels);
    if (!fresh(ticket)) return;
    out.replaceChildren(...pixelParts(r, img));
    tagged(out, r.image);
  } catch (e) { failed(ticket, e, out); }
}

function pixelParts(r, img) {
  const [h, w, c] = r.shape;
  const src = el("canvas", { width: w, height: h }), sctx = src.getContext("2d", { willReadFrequently: true });
  sctx.drawImage(img, 0, 0);
  const px = sctx.getImageData(0, 0, w, h).data;  // RGBA; a grey PNG decodes to R = G = B
  const value = (x, y, k) => px[4 * (y * w + x) + (c === 1 ? 0 : k)];
  const scale = Math.max(1, Math.floor(320 / Math.max(w, h)));
  const view = el("canvas", { width: w * scale, height: h * scale, class: "pixelated", "data-testid": "pixels-image",
    title: "point at a pixel: its numbers" });
  const vctx = view.getContext("2d");
  const channel = el("select", { id: "pixel-channel" }, ...r.channels.slice(0, 3).map((name, k) => el("option", { value: k, text: name })));
  const at = el("p", { "data-testid": "pixel-at" });
  const table = el("table", { class: "numbers pixels", "data-testid": "pixel-grid" });
  let cur = [Math.floor(w / 2), Math.floor(h / 2)];
  const show = ([x, y]) => {
    cur = [x, y];
    vctx.imageSmoothingEnabled = false;
    vctx.drawImage(src, 0, 0, w * scale, h * scale);
    const x0 = Math.max(0, Math.min(w - GRID_COLS, x - GRID_COLS / 2)), y0 = Math.max(0, Math.min(h - GRID_ROWS, y - GRID_ROWS / 2));
    vctx.strokeStyle = "#f00"; vctx.lineWidth = 1;
    vctx.strokeRect(x0 * scale + 0.5, y0 * scale + 0.5, Math.min(GRID_COLS, w) * scale - 1, Math.min(GRID_ROWS, h) * scale - 1);
    const k = Number(channel.value);
    const all = r.channels.slice(0, c).map((name, j) => `${name} ${value(x, y, j)}`).join(", ");
    at.textContent = `pixel (x ${x}, y ${y}) of ${w}x${h}: ${all}`;
    table.replaceChildren(...Array.from({ length: Math.min(GRID_ROWS, h) }, (_, i) => el("tr", {},
      ...Array.from({ length: Math.min(GRID_COLS, w) }, (_, j) => {
        const v = value(x0 + j, y0 + i, k);
        return el("td", { class: x0 + j === x && y0 + i === y ? "here" : "", text: String(v),
          style: `background:rgb(${v},${v},${v});color:${v > 127 ? "#000" : "#fff"}` });
      }))));
  };
  view.addEventListener("mousemove", (e) => {
    const b = view.getBoundingClientRect();
    show([Math.min(w - 1, Math.floor((e.clientX - b.left) * w / b.width)), Math.min(h - 1, Math.floor((e.clientY - b.top) * h / b.height))]);
  });
  channel.addEventListener("change", () => show(cur));
  show(cur);
  const resized = r.resized ? ` (scaled down from ${r.resized.from[1]}x${r.resized.from[0]})` : "";
  return [el("p", { class: "muted", text: `${r.image} is ${h} x ${w} x ${c} numbers in 0..255${resized}: what the computer sees. Point at the image.` }),
    el("div", { class: "row top" }, view, el("div", {}, c > 1 ? el("label", {}, "numbers of channel ", channel) : "", table, at))];
}

// ------------------------------------------------------------------ X or X?
async function loadXo() {
  try {
    state.xo = await api("/v1/xo");
    const pick = (id, names) => $(id).replaceChildren(...names.map((n) => el("option", { value: n, text: n.replace("_", " ") })));
    pick("xo-image", Object.keys(state.xo.images));
    pick("xo-filter", Object.keys(state.xo.filters));
    for (const id of ["xo-image", "xo-filter"]) $(id).addEventListener("change", showXo);
    showXo();
  } catch (e) { $("xo-view").replaceChildren(el("p", { class: "muted", text: `the case study could not be had: ${e.message}` })); }
}

function signGrid(values, testid, cellClass) {  // -1/+1 (or any value in -1..1) as a blue-white-red grid of numbers
  return el("table", { class: "numbers xo", "data-testid": testid }, ...values.map((row, i) => el("tr", {},
    ...row.map((v, j) => {
      const t = Math.min(1, Math.abs(v)), c = Math.round(255 * (1 - t));
      return el("td", { "data-rc": `${i},${j}`, class: cellClass ? cellClass(i, j) : "",
        style: `background:${v >= 0 ? `rgb(255,${c},${c})` : `rgb(${c},${c},255)`};color:${t > 0.6 ? "#fff" : "#000"}`,
        text: Number.isInteger(v) ? String(v) : v.toFixed(2) });
    }))));
}

function showXo() {
  const s = state.xo, image = $("xo-image").value, filter = $("xo-filter").value;
  const img = s.images[image], f = s.filters[filter], fmap = s.feature_maps[image][filter];
  const imgGrid = signGrid(img, "xo-image-grid"), math = el("p", { class: "sum", "data-testid": "xo-sum" });
  const mapGrid = signGrid(fmap, "xo-map");
  const point = (r, c) => {  // the 3x3 patch under feature-map value (r, c), and the sum that made it
    imgGrid.querySelectorAll("td").forEach((td) => {
      const [i, j] = td.dataset.rc.split(",").map(Number);
      td.classList.toggle("patch-on", i >= r && i < r + 3 && j >= c && j < c + 3);
    });
    mapGrid.querySelectorAll("td").forEach((td) => td.classList.toggle("here", td.dataset.rc === `${r},${c}`));
    const products = f.flatMap((row, i) => row.map((w, j) => w * img[r + i][c + j]));
    const sum = products.reduce((a, b) => a + b, 0);
    math.textContent = `(${products.map((p) => (p < 0 ? `(${p})` : String(p))).join(" + ")}) / 9 = ${sum} / 9 = ${(sum / 9).toFixed(2)}` +
      ` · the map holds ${fmap[r][c].toFixed(2)}`;
  };
  mapGrid.querySelectorAll("td").forEach((td) => td.addEventListener("mouseenter", () => point(...td.dataset.rc.split(",").map(Number))));
  const best = fmap.flat().indexOf(Math.max(...fmap.flat()));
  point(Math.floor(best / fmap[0].length), best % fmap[0].length);
  const figure = (grid, caption) => el("figure", {}, grid, el("figcaption", { class: "muted", text: caption }));
  const lines = s.report.split("\n"), at = lines.findIndex((line) => line.startsWith("Pixel by pixel"));
  const differs = at < 0 ? "" : lines.slice(at).join(" ");  // the case study's conclusion
  $("xo-view").replaceChildren(el("div", { class: "row top" },
    figure(imgGrid, `${image}: 9x9, +1 ink, -1 background`), figure(signGrid(f, "xo-filter-grid"), `filter ${filter.replace("_", " ")}`),
    figure(mapGrid, "feature map 7x7 (no padding): each value the mean of 9 products; point at one"),
    figure(signGrid(s.relu[image][filter], "xo-relu"), "ReLU: negatives to 0"),
    figure(signGrid(s.pooled[image][filter], "xo-pooled"), "2x2 max pooling: 4x4")),
  math, el("p", { class: "muted", text: differs }));
}
