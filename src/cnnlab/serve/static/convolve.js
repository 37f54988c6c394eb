// The convolution explorer: a hand-made 3x3 kernel slides over the image in grey.
"use strict";

function setupConvolve() {
  $("preset").addEventListener("change", fillKernel);
  for (const id of ["stride", "padding"]) $(id).addEventListener("input", schedule);
}

async function loadKernels() {
  state.kernels = await api("/v1/kernels");
  const k = state.kernels;
  $("preset").replaceChildren(...Object.keys(k).filter((n) => k[n].length === 3 && k[n][0].length === 3)
    .map((n) => el("option", { value: n, text: n })));
  $("kernel").replaceChildren(...[0, 1, 2].map((r) => el("tr", {}, ...[0, 1, 2].map((c) =>
    el("td", {}, el("input", { type: "number", step: "any", "data-rc": `${r}${c}`, "aria-label": `kernel row ${r + 1} column ${c + 1}`, oninput: schedule }))))));
  $("preset").value = "edge";
  fillKernel();
}

function fillKernel() {
  state.kernels[$("preset").value].forEach((row, r) => row.forEach((v, c) => {
    document.querySelector(`[data-rc="${r}${c}"]`).value = Number(v.toFixed(4));
  }));
  schedule();
}

function kernelText() {
  return [0, 1, 2].map((r) => [0, 1, 2].map((c) => document.querySelector(`[data-rc="${r}${c}"]`).value || "0").join(",")).join(";");
}

function schedule() { clearTimeout(schedule.timer); if (state.image) schedule.timer = setTimeout(runConvolve, 300); }

async function runConvolve() {
  if (!state.image) return;
  const ticket = begin("convolve"), out = $("convolution");
  try {
    const extra = { kernel: kernelText(), stride: $("stride").value || "1" };
    if ($("padding").value !== "") extra.padding = $("padding").value;
    const form = imageForm(extra);
    form.delete("model");
    const r = await api("/v1/convolve", form);
    if (!fresh(ticket)) return;
    const m = r.feature_maps[0];
    const resized = r.input.resized_from ? ` (from ${r.input.resized_from.join("x")})` : "";
    out.replaceChildren(el("div", { class: "maps" },
      el("figure", {}, el("img", { src: r.input.image, alt: "input" }), el("figcaption", { text: `${r.image} in grey: ${r.input.shape.join("x")}${resized}` })),
      el("figure", { "data-testid": "feature-map" }, el("img", { src: m.image, alt: "feature map" }),
        el("figcaption", { text: `feature map ${m.shape.join("x")}, stride ${r.stride}, padding ${r.padding}; values ${m.min.toFixed(2)} .. ${m.max.toFixed(2)}` }))));
    tagged(out, r.image);
  } catch (e) { failed(ticket, e, out); }
}
