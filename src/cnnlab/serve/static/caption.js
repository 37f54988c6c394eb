// Captioning: the caption, its beams, and (for models with attention) where it looked for each word:
// point at a word and its attention map (the decoder's weights over the encoder's h x w grid) is
// upsampled to the image's shown size and drawn over it, as in Show, Attend and Tell's figures.
"use strict";

function captionView(r) {
  const words = Array.isArray(r.words) ? r.words : r.caption.split(/\s+/).filter(Boolean);
  const maps = Array.isArray(r.word_attention) ? r.word_attention : [];
  const holder = el("div", { "data-testid": "attention-view" });
  const show = (i) => {
    sentence.querySelectorAll(".word").forEach((w, j) => w.classList.toggle("on", j === i));
    if (!maps[i] || !state.shown) return;
    holder.replaceChildren(...attentionParts(r, words, maps[i], i));
  };
  const sentence = el("p", { class: "caption", "data-testid": "caption" },
    ...words.flatMap((w, i) => [el("span", { class: "word", text: w, tabindex: 0, "data-word": i,
      onmouseenter: () => show(i), onclick: () => show(i), onfocus: () => show(i) }), " "]),
    words.length ? "" : el("span", { class: "muted", text: "(empty: the model ended the caption at once)" }));
  const parts = [sentence];
  if (maps.length) parts.push(el("p", { class: "muted", text: "point at a word: where the model looked when it wrote it" }), holder);
  if (Array.isArray(r.beams) && r.beams.length > 1) {
    parts.push(el("h3", { text: "Other beams" }), el("ol", { class: "beams" },
      ...r.beams.map((b) => el("li", { text: `${b.caption} (score ${Number(b.score).toFixed(3)})` }))));
  }
  if (typeof r.attention === "string" && r.attention.startsWith("data:image/")) {  // the task's figure: every word at once
    parts.push(el("details", {}, el("summary", { text: "every word at once (the figure `cnnlab predict --attention` writes)" }),
      el("figure", { "data-testid": "attention-figure" }, el("img", { src: r.attention, alt: "attention per word", class: "figure" }),
        el("figcaption", { class: "muted", text: `where the decoder looked for each word of "${r.caption}" · image ${r.image}` }))));
  }
  if (maps.length) show(0);
  return parts;
}

function attentionParts(r, words, grid, i) {  // word i's (h, w) weights over the image on screen
  const [gh, gw] = [grid.length, grid[0].length];
  const flat = grid.flat(), peak = Math.max(...flat), uniform = 1 / flat.length;
  const shown = overImage("attention");
  shown.canvas.dataset.word = i;
  const small = el("canvas", { width: gw, height: gh }), ctx = small.getContext("2d");
  const data = ctx.createImageData(gw, gh);
  flat.forEach((v, k) => { const g = Math.round(255 * v / (peak || 1)); data.data.set([g, g, g, 255], 4 * k); });
  ctx.putImageData(data, 0, 0);
  const where = el("p", { class: "muted", "data-testid": "attention-hover", text: "point at the image: the weight there" });
  shown.canvas.addEventListener("mousemove", (e) => {
    const b = shown.canvas.getBoundingClientRect();
    const y = Math.min(gh - 1, Math.floor((e.clientY - b.top) * gh / b.height)), x = Math.min(gw - 1, Math.floor((e.clientX - b.left) * gw / b.width));
    where.textContent = `cell (${y}, ${x}) of the ${gh}x${gw} grid: weight ${grid[y][x].toFixed(4)} (uniform: ${uniform.toFixed(4)})`;
  });
  paintMap(shown.canvas, small.toDataURL(), (v) => Math.round(0.8 * v)).catch(() => {});
  return [el("figure", {}, shown.box, el("figcaption", { text: `where the decoder looked for "${words[i]}" (word ${i + 1} of ${words.length}) · image ${r.image}` })),
    legend("0", peak.toFixed(4), `attention weight over the encoder's ${gh}x${gw} grid (each word's sum to 1; uniform would be ${uniform.toFixed(4)})`),
    where];
}
