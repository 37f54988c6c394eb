// Captioning: the caption, its beams, and (for models with attention) where it looked for each word.
"use strict";

function captionView(r) {
  const words = r.caption.split(/\s+/).filter(Boolean);
  const maps = Array.isArray(r.word_attention) ? r.word_attention : [];
  const holder = el("div", { "data-testid": "attention-view" });
  const show = (i) => {
    sentence.querySelectorAll(".word").forEach((w, j) => w.classList.toggle("on", j === i));
    if (!maps[i] || !state.shown) return;
    const shown = overImage("attention");
    holder.replaceChildren(el("figure", {}, shown.box, el("figcaption", { text: `where the decoder looked for "${words[i]}" · image ${r.image}` })),
      legend("0", "1", "attention weight (scaled to its largest)"));
    paintMap(shown.canvas, maps[i], (v) => Math.round(0.8 * v)).catch(() => {});
  };
  const sentence = el("p", { class: "caption", "data-testid": "caption" },
    ...words.flatMap((w, i) => [el("span", { class: "word", text: w, tabindex: 0, onmouseenter: () => show(i), onclick: () => show(i), onfocus: () => show(i) }), " "]),
    words.length ? "" : el("span", { class: "muted", text: "(empty: the model ended the caption at once)" }));
  const parts = [sentence];
  if (maps.length) parts.push(el("p", { class: "muted", text: "point at a word: where the model looked for it" }), holder);
  if (typeof r.attention === "string" && r.attention.startsWith("data:image/")) {  // the task's figure: a map per word
    parts.push(el("figure", { "data-testid": "attention-figure" }, el("img", { src: r.attention, alt: "attention per word", class: "figure" }),
      el("figcaption", { class: "muted", text: `where the decoder looked for each word of "${r.caption}" · image ${r.image}` })));
  }
  if (Array.isArray(r.beams) && r.beams.length > 1) {
    parts.push(el("h3", { text: "Other beams" }), el("ol", { class: "beams" },
      ...r.beams.map((b) => el("li", { text: `${b.caption} (score ${Number(b.score).toFixed(3)})` }))));
  }
  if (maps.length) show(0);
  return parts;
}
