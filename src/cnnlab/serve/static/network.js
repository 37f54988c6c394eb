// The network overview (CNN Explainer for the served classifier): the layers left to right, each with
// a few activation maps for the image on screen, drawn at sizes in proportion to their real shapes,
// then the softmax. Click a map: how one of its values was computed (the kernel over the input patch,
// the sum written out, then BatchNorm and ReLU; for a max-pool, the window and its largest value).
"use strict";

const fmt = (v, d = 3) => (v === null || v === undefined ? "pad" : Number(v).toFixed(d));

async function runNetwork() {
  const m = currentModel();
  if (!state.image || !m || !m.explain) return;
  const ticket = begin("network"), out = $("overview");
  out.replaceChildren(el("p", { class: "muted", text: "running the image through every layer..." }));
  $("conv-step").replaceChildren();
  try {
    const r = await api("/v1/network", imageForm({ maps: 4, order: $("overview-order").value }));
    if (!fresh(ticket)) return;
    state.network = r;
    out.replaceChildren(...overviewParts(r));
    tagged(out, r.image);
  } catch (e) { failed(ticket, e, out, $("conv-step")); }
}

function overviewParts(r) {
  const [, H, W] = r.input.shape;
  const scale = Math.max(1, 96 / Math.max(H, W));  // screen pixels per unit of the input; every layer the same
  const size = (h, w) => [Math.max(6, Math.round(w * scale)), Math.max(6, Math.round(h * scale))];
  const [iw, ih] = size(H, W);
  const columns = [el("div", { class: "layer-col", "data-layer": "input" },
    el("div", { class: "col-head", text: "input" }), el("div", { class: "muted", text: `${H}x${W}x${r.input.shape[0]}` }),
    el("img", { src: r.input.image, alt: "what the model saw", class: "pixelated", style: `width:${iw}px;height:${ih}px` }))];
  r.layers.forEach((L, li) => {
    const [c, h, w] = L.shape, [mw, mh] = size(h, w);
    const maps = L.maps.map((m) => {
      const canvas = el("canvas", { width: w, height: h, class: "fmap-o", style: `width:${mw}px;height:${mh}px`,
        "data-channel": m.channel, title: `${L.label} map #${m.channel}: ${fmt(m.min)}..${fmt(m.max)}. Click: how a value was computed` });
      canvas.addEventListener("click", () => { stopPlay(); selectMap(canvas); runUnit(unitLayer(r, li), m.channel); });
      paintPixels(canvas, m.image).catch(() => {});
      return canvas;
    });
    columns.push(el("div", { class: `layer-col ${L.type.toLowerCase()}`, "data-layer": L.name, title: L.name },
      el("div", { class: "col-head", text: L.label }), el("div", { class: "muted", text: `${h}x${w}x${c}` }), ...maps));
  });
  const s = r.softmax;
  columns.push(el("div", { class: "layer-col softmax", "data-layer": "softmax", "data-testid": "softmax" },
    el("div", { class: "col-head", text: "softmax" }),
    el("div", { class: "muted", text: `p = e^z / Σ e^z over ${s.classes_total} classes; Σ e^z = ${fmt(s.sum_exp)}` }),
    ...s.classes.map((name, i) => el("div", { class: "soft-row", "data-class": name },
      el("span", { class: "label", text: name }),
      el("span", { class: "muted", text: `e^${fmt(s.logits[i])} / ${fmt(s.sum_exp)} = ` }),
      el("b", { class: "prob", text: fmt(s.probs[i]) }),
      el("div", { class: "bar", style: `width:${(100 * s.probs[i]).toFixed(1)}%` })))));
  const which = r.order === "class" ? `the channels that add most to "${r.path_class}" (activation x gradient: the predicted class's path)`
    : "the most active channels";
  return [el("p", { class: "muted", "data-testid": "overview-note", text: `${r.image}: each conv's maps are ${which}; the activations and pools ` +
      "after it show the same channels; drawn to scale. Click a map: how one of its values was computed." }),
  legend("min", "max", "each map scaled to its own range"),
  el("div", { class: "overview", "data-testid": "overview" }, ...columns)];
}

function selectMap(canvas) {
  document.querySelectorAll("#overview canvas.on").forEach((c) => c.classList.remove("on"));
  canvas.classList.add("on");
}

function unitLayer(r, li) {  // the layer whose arithmetic a click on layer li shows: an activation -> its conv
  const L = r.layers[li];
  if (L.type.startsWith("Conv") || L.type === "MaxPool2d") return L.name;
  for (let j = li - 1; j >= 0; j--) {
    const P = r.layers[j];
    if (P.type.startsWith("Conv") && P.shape.join() === L.shape.join()) return P.name;
    if (P.shape.join() !== L.shape.join()) break;
  }
  return L.name;  // the service says, in words, which layers it can write out
}

// ------------------------------------------------------------------ one value, written out
function stopPlay() {  // the kernel stops sliding by itself
  if (state.playing) clearTimeout(state.playing.timer);
  state.playing = null;
}

async function runUnit(layer, channel, y, x) {
  const ticket = begin("unit"), out = $("conv-step");
  const extra = { layer, channel };
  if (y !== undefined) Object.assign(extra, { y, x });
  try {
    const u = await api("/v1/unit", imageForm(extra));
    if (!fresh(ticket)) return;
    clearError();
    out.replaceChildren(...unitParts(u));
    tagged(out, u.image);
  } catch (e) { failed(ticket, e, out); }
}

function unitParts(u) {
  const [, h, w] = u.shape;
  const cell = Math.max(4, Math.floor(160 / Math.max(h, w)));
  const map = el("canvas", { width: w * cell, height: h * cell, class: "unit-map", "data-testid": "unit-map",
    title: "click a position: how its value was computed" });
  const small = el("canvas", { width: w, height: h });
  paintPixels(small, u.map.image).then(() => {
    const ctx = map.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(small, 0, 0, w * cell, h * cell);
    ctx.strokeStyle = "#f00"; ctx.lineWidth = 2;
    ctx.strokeRect(u.x * cell + 1, u.y * cell + 1, cell - 2, cell - 2);
  }).catch(() => {});
  map.addEventListener("click", (e) => {
    stopPlay();
    const b = map.getBoundingClientRect();
    runUnit(u.layer, u.channel, Math.min(h - 1, Math.floor((e.clientY - b.top) * h / b.height)), Math.min(w - 1, Math.floor((e.clientX - b.left) * w / b.width)));
  });
  const step = () => { const k = u.y * w + u.x + 1; runUnit(u.layer, u.channel, Math.floor(k / w) % h, k % w); };
  const next = el("button", { class: "plain", "data-testid": "unit-next", text: "slide →", onclick: () => { stopPlay(); step(); } });
  const playing = state.playing && state.playing.rid === state.rid && state.playing.key === `${u.layer}/${u.channel}`;
  const play = el("button", { class: "plain", "data-testid": "unit-play", text: playing ? "stop" : "play ▶",
    title: "slide the kernel over the map, one position every half second",
    onclick: () => { if (playing) { stopPlay(); play.textContent = "play ▶"; } else { state.playing = { rid: state.rid, key: `${u.layer}/${u.channel}` }; step(); } } });
  if (playing) {  // the next position once this one has been read; the map's last position ends the play
    if (u.y * w + u.x + 1 >= h * w) stopPlay();
    else state.playing.timer = setTimeout(() => { if (state.playing && state.playing.rid === state.rid) step(); }, 500);
  }
  const head = el("h3", { text: `${u.label}, map #${u.channel}, position (${u.y}, ${u.x}) of ${h}x${w}` });
  const left = el("figure", {}, map, el("figcaption", { class: "muted", text: `map #${u.channel} of ${u.label}` }),
    el("div", { class: "row" }, next, play));
  const body = u.type === "MaxPool2d" ? poolParts(u) : convParts(u);
  return [head, el("div", { class: "row top" }, left, el("div", { class: "unit-math", "data-testid": "unit-math" }, ...body))];
}

function numberGrid(values, cls, mark) {  // a small matrix of numbers; mark(i, j) -> extra class
  return el("table", { class: `numbers ${cls}` }, ...values.map((row, i) => el("tr", {},
    ...row.map((v, j) => el("td", { class: mark ? mark(i, j) : "", text: fmt(v, 2) })))));
}

function convParts(u) {
  const [kh, kw] = u.kernel;
  const parts = [el("p", { text: `The ${kh}x${kw} kernel of map #${u.channel} over input rows ${u.rows[0]}..${u.rows[u.rows.length - 1]}, ` +
    `columns ${u.cols[0]}..${u.cols[u.cols.length - 1]} (stride ${u.stride.join("x")}, padding ${u.padding.join("x")}: "pad" is a zero), ` +
    `for each of its ${u.in_channels} input channels: multiply element-wise, add up.` })];
  const shown = u.channels.slice(0, 4);
  parts.push(el("div", { class: "products" }, ...shown.map((c) => el("div", { class: "product", "data-testid": "product" },
    el("div", { class: "muted", text: `input channel ${c.channel}` }),
    el("div", { class: "row" }, numberGrid(c.patch.map((row, i) => row.map((v, j) => (isPad(u, i, j) ? null : v))), "patch"),
      el("span", { text: "⊙" }), numberGrid(c.weights, "weights"), el("span", { text: `= ${fmt(c.sum, 4)}` }))))));
  const rest = u.channels.slice(4), others = u.in_channels - u.channels.length;
  const terms = [...shown.map((c) => fmt(c.sum, 4)), ...(rest.length ? [`${rest.length} more (${fmt(rest.reduce((s, c) => s + c.sum, 0), 4)})`] : []),
    ...(others > 0 ? [`${others} smaller ones (${fmt(u.total - u.bias - u.channels.reduce((s, c) => s + c.sum, 0), 4)})`] : [])];
  parts.push(el("p", { class: "sum", "data-testid": "unit-sum",
    text: `sum = ${terms.join(" + ")} + bias ${fmt(u.bias, 4)} = ${fmt(u.total, 4)}` }),
  el("p", { class: "muted", "data-testid": "unit-output", text: `the conv layer's own output here: ${fmt(u.output, 4)}` }));
  for (const s of u.after || []) {
    if (s.type === "BatchNorm2d") {
      parts.push(el("p", { "data-testid": "unit-bn", text: `${s.label}: (z − mean) / √(var + eps) · γ + β = (${fmt(s.input, 4)} − ${fmt(s.mean, 4)}) / ` +
        `√(${fmt(s.var, 4)} + ${s.eps}) · ${fmt(s.gamma, 4)} + ${fmt(s.beta, 4)} = ${fmt(s.value, 4)}` }));
    } else {
      parts.push(el("p", { "data-testid": "unit-relu", text: `${s.label}: ${s.type === "ReLU" ? "max(0, z)" : s.type} = ${s.type === "ReLU" ? `max(0, ${fmt(s.input, 4)})` : fmt(s.input, 4)} = ${fmt(s.value, 4)}` }));
    }
  }
  return parts;
}

function isPad(u, i, j) {  // a patch cell outside the input: a zero of the padding
  const [, H, W] = u.input_shape;
  return u.rows[i] < 0 || u.rows[i] >= H || u.cols[j] < 0 || u.cols[j] >= W;
}

function poolParts(u) {
  const best = u.total;
  return [el("p", { text: `Max-pool: the ${u.kernel.join("x")} window at input rows ${u.rows[0]}..${u.rows[u.rows.length - 1]}, ` +
      `columns ${u.cols[0]}..${u.cols[u.cols.length - 1]} of channel ${u.channel} keeps its largest value.` }),
  numberGrid(u.window, "patch", (i, j) => (u.window[i][j] === best ? "max" : "")),
  el("p", { class: "sum", "data-testid": "unit-sum", text: `max(${u.window.flat().filter((v) => v !== null).map((v) => fmt(v, 4)).join(", ")}) = ${fmt(best, 4)}` }),
  el("p", { class: "muted", "data-testid": "unit-output", text: `the pool layer's own output here: ${fmt(u.output, 4)}` })];
}
