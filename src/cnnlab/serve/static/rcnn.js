// The R-CNN story on the image on screen, in three steps: (1) the region proposer's top regions,
// (2) every region the classifier head scored (the same request with non-maximum suppression off:
// nms_iou 1), (3) what is left after NMS: the detections. Steps 2 and 3 follow the score slider.
"use strict";

const PROPOSAL_COLOUR = "#f59e0b";

function rcnnStory(r) {
  const m = currentModel() || { classes: [], options: {} };
  const colour = (name) => PALETTE[Math.max(0, m.classes.indexOf(name)) % PALETTE.length];
  const nms = Number(((document.getElementById("option-nms_iou") || {}).value) || (m.options || {}).nms_iou || 0.5);
  const steps = [0, 1, 2].map((i) => {
    const shown = overImage(`rcnn-step-${i + 1}`, 220);
    const note = el("figcaption", { class: "muted", "data-testid": `rcnn-note-${i + 1}` });
    return { shown, note, figure: el("figure", { class: "step" }, shown.box, note) };
  });
  const [props, scored, final] = steps;
  let regions = null, threshold = SCORE_FLOOR;  // step 2's boxes, once its request has answered
  const sx = props.shown.w / r.width, sy = props.shown.h / r.height;
  const proposals = (r.proposals || []).map((box) => ({ box }));
  const draw = (t) => {
    threshold = t;
    drawBoxes(props.shown, proposals, sx, sy, () => PROPOSAL_COLOUR, false);
    props.note.textContent = `1. the region proposer's top ${proposals.length} regions: where an object might be, of no class yet`;
    const kept = r.detections.filter((d) => d.score >= t);
    drawBoxes(final.shown, kept, sx, sy, colour, false);  // labelled in the main picture above
    final.note.textContent = `3. after non-maximum suppression (IoU > ${nms} with a better box of its class: dropped): ${kept.length} boxes`;
    if (!regions) { scored.note.textContent = "2. scoring every region..."; return; }
    const all = regions.filter((d) => d.score >= t);
    drawBoxes(scored.shown, all, sx, sy, colour, false);
    const cap = regions.length >= 100 ? " (the head keeps its 100 best per image)" : "";
    scored.note.textContent = `2. each region classified and its box refined: ${all.length} score at least ${t.toFixed(3)}${cap}, many overlapping`;
  };
  const box = el("div", { "data-testid": "rcnn-story" }, el("h3", { text: `The R-CNN story on ${r.image}` }),
    el("div", { class: "maps steps" }, ...steps.map((s) => s.figure)));
  tagged(box, r.image);
  loadRegions(r, (found) => { regions = found; draw(threshold); }, scored.note);
  return { box, draw };
}

async function loadRegions(r, done, note) {  // the same image and options, non-maximum suppression off
  const ticket = { view: "predict", rid: state.rid, n: state.views.predict };  // the prediction it belongs to
  try {
    const opts = { ...optionValues(), nms_iou: 1.0, show_proposals: false };
    const found = await api("/v1/predict", imageForm({ options: JSON.stringify(opts) }));
    if (!fresh(ticket)) return;
    done(found.detections);
  } catch (e) { if (fresh(ticket)) note.textContent = `2. the scored regions could not be had: ${e.message}`; }
}
