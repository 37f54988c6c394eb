// Detection: the boxes drawn on the image at its shown size, a score slider that filters them live,
// a table of the boxes shown, and the R-CNN story on this image in three steps (rcnn.js).
"use strict";

const SCORE_FLOOR = 0.05;  // the page asks for every box scoring at least this; the slider filters above
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173"];

function boxesView(r) {
  if (!state.shown) return el("p", { class: "muted", text: "the browser cannot show this image; the boxes:" }, boxTable(r.detections, r.model));
  const m = currentModel() || { classes: [] };
  const colour = (name) => PALETTE[Math.max(0, m.classes.indexOf(name)) % PALETTE.length];
  const shown = overImage("boxes", 640);
  const sx = shown.w / r.width, sy = shown.h / r.height;  // boxes are in the pixels the task saw
  const start = (m.options || {}).score_threshold ?? 0.5;
  const slider = el("input", { type: "range", id: "score-threshold", min: SCORE_FLOOR, max: 1, step: 0.001, value: start });
  const value = el("output", { for: "score-threshold", text: Number(start).toFixed(3) });
  const count = el("span", { class: "muted", "data-testid": "box-count" });
  const table = el("div", { class: "scroll" });
  const story = rcnnStory(r);
  const draw = () => {
    const threshold = Number(slider.value);
    const kept = r.detections.filter((d) => d.score >= threshold);
    value.textContent = threshold.toFixed(3);
    drawBoxes(shown, kept, sx, sy, colour, true);
    count.textContent = `${kept.length} of ${r.detections.length} boxes score at least ${threshold.toFixed(3)}`;
    table.replaceChildren(boxTable(kept));
    story.draw(threshold);
  };
  slider.addEventListener("input", draw);
  draw();
  return el("div", { "data-testid": "detections" }, el("label", { class: "slider" }, "score threshold ", slider, value), count,
    el("figure", {}, shown.box, el("figcaption", { class: "muted", text: `${r.image}: ${r.width}x${r.height} px, drawn at ${shown.w}x${shown.h}` })),
    story.box, table);
}

function drawBoxes(shown, boxes, sx, sy, colour, labels) {  // boxes ({box, class?, score?}) on a canvas over the image
  const ctx = shown.canvas.getContext("2d");
  ctx.clearRect(0, 0, shown.w, shown.h);
  ctx.lineWidth = labels ? 2 : 1.5;
  ctx.font = "13px system-ui, sans-serif";
  for (const d of boxes) {
    const [x0, y0, x1, y1] = [d.box[0] * sx, d.box[1] * sy, d.box[2] * sx, d.box[3] * sy];
    ctx.strokeStyle = ctx.fillStyle = colour(d.class);
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    if (!labels || d.score === undefined) continue;
    const text = `${d.class} ${d.score.toFixed(2)}`, tw = ctx.measureText(text).width + 6;
    const ty = y0 >= 17 ? y0 - 17 : y0;
    ctx.fillRect(x0, ty, tw, 17);
    ctx.fillStyle = "#fff";
    ctx.fillText(text, x0 + 3, ty + 13);
  }
  shown.canvas.dataset.boxes = boxes.length;
}

function boxTable(detections) {
  const rows = detections.map((d, i) => el("tr", {}, el("td", { class: "num", text: String(i + 1) }), el("td", { text: d.class }),
    el("td", { class: "num", text: d.score.toFixed(4) }), ...d.box.map((v) => el("td", { class: "num", text: v.toFixed(1) }))));
  const head = el("tr", {}, ...["#", "class", "score", "x0", "y0", "x1", "y1"].map((t) => el("th", { text: t })));
  return el("table", { class: "grid", "data-testid": "box-table" }, el("thead", {}, head), el("tbody", {}, ...rows));
}
